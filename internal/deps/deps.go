//go:build tools

// Package deps pins the project's dependencies while the packages that use
// them are being written; it is never built.
package deps

import (
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/expr-lang/expr"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/robfig/cron/v3"
	_ "github.com/slack-go/slack"
	_ "github.com/stretchr/testify/require"
	_ "go.etcd.io/bbolt"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/time/rate"
)
