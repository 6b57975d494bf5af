package synnefosim_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/synnefosim"
)

func TestRealityScenarioLoads(t *testing.T) {
	sc, err := synnefosim.LoadScenario(filepath.Join("testdata", "reality.yaml"))
	require.NoError(t, err)
	c, err := synnefosim.New(sc)
	require.NoError(t, err)
	require.Len(t, c.State().Servers, 2)
}
