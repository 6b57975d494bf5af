package watcher

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/ha"
)

// haConfig is the election's configuration from ha.etcd.
func haConfig(cfg *config.Config, self ha.Member, log *slog.Logger, window func() time.Duration) (ha.Config, error) {
	e := cfg.HA.Etcd
	tc, err := e.TLS()
	if err != nil {
		return ha.Config{}, fmt.Errorf("etcd TLS: %w", err)
	}
	return ha.Config{Endpoints: e.Endpoints, TLS: tc, Prefix: e.Prefix, TTL: e.LeaseTTL, Self: self,
		Logger: log.With("component", "ha"), JournalWindow: window}, nil
}
