package config

import (
	"crypto/tls"
	"time"
)

type HA struct{ Etcd Etcd }

type Etcd struct {
	Endpoints []string
	Prefix    string
	LeaseTTL  time.Duration
}

func (e Etcd) TLS() (*tls.Config, error) { return nil, nil }
