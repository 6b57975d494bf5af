package store

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// decodeProject reads every stored project as json.Unmarshal does, by its
// own scan or, for anything else, through json.Unmarshal.
func TestDecodeProjectAsUnmarshal(t *testing.T) {
	names := []string{"", "p", "Project 42", "alice@example.org (personal)", "ünïcödé", "tab\there", `quote"d`,
		`back\slash`, "<html> & co", "\x7f", "日本語", "\u2028"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return names[rng.IntN(len(names))] }
	var values [][]byte
	for range 2000 {
		p := quota.Project{ID: pick(), Name: pick(), System: rng.IntN(2) == 0, State: pick(), Owner: pick(),
			Membership: pick(), Display: pick()}
		v, err := json.Marshal(p)
		require.NoError(t, err)
		values = append(values, v)
	}
	// Forms json.Marshal does not write, which json.Unmarshal still reads
	// or refuses.
	for _, v := range []string{
		`{"id":"a","name":"b","system":false}`,
		`{"name":"b","id":"a","system":false}`,
		`{"id":"a","name":"b","system":true,"display":"d","state":"s"}`,
		`{"id":"a","name":"b","system":false,"state":""}`,
		`{"id":"a","name":"b","system":false,"extra":1}`,
		`{"id":"a","name":"b","system":false,"state":"x","state":"y"}`,
		`{"id":"a","name":"b","system":false} `,
		` {"id":"a","name":"b","system":false}`,
		`{"id":"a","name":"b","system":null}`,
		`{"id":"a","name":"b"}`,
		`{"id":"a","name":"b","system":false,}`,
		`{"id":"a","name":"b","system":fals}`,
		`{"id":"a","name":"b","system":false`,
		`{"id":"a\u0062","name":"b","system":false}`,
		"{\"id\":\"a\xff\",\"name\":\"b\",\"system\":false}",
		"{\"id\":\"a\x01\",\"name\":\"b\",\"system\":false}",
		`{"ID":"a","name":"b","system":false}`,
		`{}`, `{`, ``, `null`, `[]`,
	} {
		values = append(values, []byte(v))
	}
	for _, v := range values {
		var want quota.Project
		wantErr := json.Unmarshal(v, &want)
		got, err := decodeProject(v)
		if wantErr != nil {
			require.Error(t, err, "%s", v)
			continue
		}
		require.NoError(t, err, "%s", v)
		require.Equal(t, want, got, "%s", v)
	}
	// The values json.Marshal writes without escapes take the direct path.
	p := quota.Project{ID: "project-00042", Name: "Project 42", State: "active", Membership: "accepted"}
	v, err := json.Marshal(p)
	require.NoError(t, err)
	got, ok := scanProject(v)
	require.True(t, ok, string(v))
	require.Equal(t, p, got)
}
