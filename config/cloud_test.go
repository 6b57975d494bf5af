package config_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/config"
)

func TestServiceTokens(t *testing.T) {
	cfg, err := config.Load(filepath.Join("testdata", "good-service-tokens.yaml"),
		config.Options{LookupEnv: lookup(map[string]string{"PITHOS_TOKEN": "pithos-env-token"})})
	require.NoError(t, err)
	c := cfg.Cloud
	require.False(t, c.ServiceToken.IsSet())
	require.True(t, c.HasServiceView())
	require.Equal(t, []config.ServiceToken{
		{Component: "cyclades", Token: "service-file-token"},
		{Component: "pithos", Token: "pithos-env-token"},
	}, c.Services())

	// The single key is one token of unknown component.
	old := config.Cloud{ServiceToken: "t"}
	require.Equal(t, []config.ServiceToken{{Token: "t"}}, old.Services())
}
