package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJSONLogDurationsInSeconds: JSON logs give durations in seconds, the
// key saying so, as Prometheus does; text logs keep the readable form.
func TestJSONLogDurationsInSeconds(t *testing.T) {
	for _, journal := range []bool{false, true} {
		var buf bytes.Buffer
		log, err := (&logFlags{format: "json", level: "info"}).newLogger(&buf, journal)
		require.NoError(t, err)
		log.WithGroup("cycle").Info("cycle done", "took", 1500*time.Millisecond, "wait_seconds", 2*time.Second, "n", 3)
		line := buf.Bytes()
		if journal {
			line = bytes.TrimPrefix(line, []byte("<6>"))
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), buf.String())
		require.Equal(t, map[string]any{"took_seconds": 1.5, "wait_seconds": 2.0, "n": 3.0}, rec["cycle"])
	}
	var buf bytes.Buffer
	log, err := (&logFlags{format: "text", level: "info"}).newLogger(&buf, false)
	require.NoError(t, err)
	log.Info("cycle done", "took", 1500*time.Millisecond)
	require.Contains(t, buf.String(), "took=1.5s")
}
