package view

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// countingWriter counts the writes it is given.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestWriteRowsAlignsAsTabwriter(t *testing.T) {
	words := []string{"", "a", "bb", "project-00042", "Ωμέγα", "▁▂▃█", "19.2 GiB / 20.0 GiB (96.0%)", "-"}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		cols := 1 + n%5
		header := make([]string, cols)
		for i := range header {
			header[i] = strings.ToUpper(words[rng.IntN(len(words))])
		}
		rows := make([][]string, rng.IntN(20))
		for i := range rows {
			rows[i] = make([]string, cols)
			for j := range rows[i] {
				rows[i][j] = words[rng.IntN(len(words))]
			}
		}
		var want, got bytes.Buffer
		require.NoError(t, writeTabbed(&want, header, rows))
		require.True(t, plainTable(header, rows))
		require.NoError(t, WriteRows(&got, header, rows))
		require.Equal(t, want.String(), got.String(), "table %d", n)
	}
}

func TestWriteRowsRaggedAndTabbedCells(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
	}{
		{"ragged", []string{"A", "B", "C"}, [][]string{{"x", "y"}, {"x", "yy", "z", "w"}}},
		{"tab in a cell", []string{"A", "B"}, [][]string{{"x\ty", "z"}}},
		{"newline in a cell", []string{"A", "B"}, [][]string{{"x\ny", "z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.False(t, plainTable(tt.header, tt.rows))
			var want, got bytes.Buffer
			require.NoError(t, writeTabbed(&want, tt.header, tt.rows))
			require.NoError(t, WriteRows(&got, tt.header, tt.rows))
			require.Equal(t, want.String(), got.String())
		})
	}
}

func TestWriteRowsBuffers(t *testing.T) {
	rows := make([][]string, 10_000)
	for i := range rows {
		rows[i] = []string{"project", "pithos.diskspace", "1 GiB / 2 GiB (50.0%)"}
	}
	var w countingWriter
	require.NoError(t, WriteRows(&w, []string{"PROJECT", "RESOURCE", "USAGE"}, rows))
	require.Less(t, w.writes, 20, "a write per 64 KiB, not per cell")
}

func TestWriteRowsWithoutColumns(t *testing.T) {
	var got, want bytes.Buffer
	rows := [][]string{{}, {}}
	require.NoError(t, writeTabbed(&want, nil, rows))
	require.NoError(t, WriteRows(&got, nil, rows))
	require.Equal(t, want.String(), got.String())
	require.Equal(t, "\n\n\n", got.String(), "the header's line and one per row")
}
