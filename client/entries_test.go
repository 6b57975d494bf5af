package client

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

func TestDecodeEntriesInAStableOrder(t *testing.T) {
	body := `{"b": {"pithos.diskspace": {"limit": 9223372036854775807, "usage": 5, "pending": 1,
	  "project_limit": 10, "project_usage": 7, "project_pending": 2}, "cyclades.vm": {"limit": 2, "usage": 1}},
	 "a": {"cyclades.cpu": {"limit": 4, "usage": 3}}, "c": null, "d": {}}`
	got, err := decodeEntries(strings.NewReader(body), nil)
	require.NoError(t, err)
	require.Equal(t, []quota.Entry{
		{Project: "b", Resource: "cyclades.vm", Quota: quota.Quota{Limit: 2, Usage: 1}},
		{Project: "b", Resource: "pithos.diskspace", Quota: quota.Quota{Limit: quota.Unlimited, Usage: 5, Pending: 1, ProjectLimit: 10, ProjectUsage: 7, ProjectPending: 2}},
		{Project: "a", Resource: "cyclades.cpu", Quota: quota.Quota{Limit: 4, Usage: 3}},
	}, got)

	// The same as decoding to maps and flattening.
	m, err := decodeQuotas(strings.NewReader(body))
	require.NoError(t, err)
	require.ElementsMatch(t, m.Entries(), got)

	got, err = decodeEntries(strings.NewReader("null"), nil)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestDecodeEntriesErrors(t *testing.T) {
	for _, body := range []string{`[]`, `{"a": []}`, `{"a": {"r": "x"}}`, `{"a": {"r": {"usage": 1.5}}}`, `{"a": {`, `{"a": {"r": {"usage": 1}}`} {
		_, err := decodeEntries(strings.NewReader(body), nil)
		require.Error(t, err, body)
	}
}

// FuzzDecodeEntries: whatever the body, the flat decode agrees with the map
// decode (same entries, or both fail) and never panics.
func FuzzDecodeEntries(f *testing.F) {
	f.Add(`{"a": {"pithos.diskspace": {"limit": 9223372036854775807, "usage": 1}}}`)
	f.Add(`{"a": null, "b": {}}`)
	f.Add(`null`)
	f.Add(`{"a": {"x": {"usage": -1}, "y": {"usage": 1e3}}}`)
	f.Fuzz(func(t *testing.T, body string) {
		got, err := decodeEntries(strings.NewReader(body), nil)
		want, werr := decodeQuotas(strings.NewReader(body))
		if (err == nil) != (werr == nil) {
			t.Fatalf("flat err %v, map err %v", err, werr)
		}
		if err == nil {
			require.ElementsMatch(t, want.Entries(), got)
		}
	})
}
