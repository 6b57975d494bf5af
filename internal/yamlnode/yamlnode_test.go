package yamlnode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// parse returns the document of src and the value of its key m (the node
// under test; other keys hold the anchors).
func parse(t *testing.T, src string) (doc, m *yaml.Node) {
	t.Helper()
	doc = &yaml.Node{}
	require.NoError(t, yaml.Unmarshal([]byte(src), doc))
	_, m = Get(doc, "m")
	return doc, m
}

func TestIsNull(t *testing.T) {
	tests := []struct {
		src  string // the value of k
		want bool
	}{
		{"~", true},
		{"null", true},
		{"Null", true},
		{"NULL", true},
		{"", true},
		{"!!null ''", true},
		{"!!null x", true},
		{"!<tag:yaml.org,2002:null> ''", true},
		{"*n", true}, // an alias of a null
		{"nULL", false},
		{"'null'", false},
		{`"~"`, false},
		{"!!str null", false},
		{"|\n  null\n", false},
		{"0", false},
		{"false", false},
		{"[]", false},
		{"{}", false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			var doc yaml.Node
			require.NoError(t, yaml.Unmarshal([]byte("n: &n ~\nk: "+tt.src+"\n"), &doc))
			_, v := Get(&doc, "k")
			require.NotNil(t, v)
			require.Equal(t, tt.want, IsNull(v))
		})
	}

	// Nodes built in code have no resolved tag.
	built := []struct {
		name string
		n    *yaml.Node
		want bool
	}{
		{"nil", nil, true},
		{"zero node", &yaml.Node{}, true},
		{"empty document", &yaml.Node{Kind: yaml.DocumentNode}, true},
		{"document of null", &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "~"}}}, true},
		{"untagged empty scalar", &yaml.Node{Kind: yaml.ScalarNode}, true},
		{"untagged null", &yaml.Node{Kind: yaml.ScalarNode, Value: "null"}, true},
		{"untagged quoted null", &yaml.Node{Kind: yaml.ScalarNode, Value: "null", Style: yaml.DoubleQuotedStyle}, false},
		{"untagged word", &yaml.Node{Kind: yaml.ScalarNode, Value: "x"}, false},
		{"empty mapping", &yaml.Node{Kind: yaml.MappingNode}, false},
		{"empty list", &yaml.Node{Kind: yaml.SequenceNode}, false},
	}
	for _, tt := range built {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsNull(tt.n))
		})
	}
}

func TestResolve(t *testing.T) {
	require.Nil(t, Resolve(nil))
	doc, m := parse(t, "a: &a {x: 1}\nm: *a\n")
	require.Equal(t, yaml.MappingNode, Resolve(doc).Kind)
	require.Equal(t, yaml.MappingNode, m.Kind)
	require.Equal(t, 1, m.Line)

	// A cycle built by hand ends instead of looping.
	loop := &yaml.Node{Kind: yaml.AliasNode}
	loop.Alias = loop
	require.Equal(t, yaml.AliasNode, Resolve(loop).Kind)
}

func TestIsMerge(t *testing.T) {
	_, m := parse(t, "m: {<<: {}, \"<<\": 1, !!merge x: {}, y: 1}\n")
	var got []bool
	for i := 0; i < len(m.Content); i += 2 {
		got = append(got, IsMerge(m.Content[i]))
	}
	require.Equal(t, []bool{true, false, true, false}, got)
}

// show renders pairs as key=value@line (value lines), * marking merged ones,
// and problems as kind key@line.
func show(pairs []Pair, problems []Problem) (ps, probs string) {
	var b strings.Builder
	for _, p := range pairs {
		v := p.Value.Value
		switch p.Value.Kind {
		case yaml.MappingNode:
			v = "{}"
		case yaml.SequenceNode:
			v = "[]"
		}
		mark := ""
		if p.Merged {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s%s=%s@%d ", mark, p.Key.Value, v, p.Value.Line)
	}
	ps = strings.TrimSpace(b.String())
	b.Reset()
	for _, p := range problems {
		switch p.Kind {
		case KeyNotScalar:
			fmt.Fprintf(&b, "not-scalar@%d ", p.Line())
		case DuplicateKey:
			fmt.Fprintf(&b, "duplicate %s@%d(first@%d) ", p.Key.Value, p.Line(), p.First.Line)
		case BadMerge:
			what := "nil"
			if p.Merged != nil {
				what = p.Merged.ShortTag()
			}
			fmt.Fprintf(&b, "bad-merge %s@%d ", what, p.Line())
		}
	}
	return ps, strings.TrimSpace(b.String())
}

func TestPairs(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		pairs    string
		problems string
	}{
		{
			name:  "plain",
			src:   "m:\n  a: 1\n  b: two\n",
			pairs: "a=1@2 b=two@3",
		},
		{
			name:  "aliases as values and keys",
			src:   "v: &v [1]\nk: &k b\nm:\n  a: *v\n  *k : 2\n",
			pairs: "a=[]@1 b=2@5",
		},
		{
			name:  "merge one mapping, own key overrides",
			src:   "base: &b {a: 1, b: 2}\nm:\n  <<: *b\n  b: 3\n",
			pairs: "*a=1@1 b=3@4",
		},
		{
			name:  "own key before the merge key still overrides",
			src:   "base: &b {a: 1, b: 2}\nm:\n  b: 3\n  <<: *b\n",
			pairs: "b=3@3 *a=1@1",
		},
		{
			name:  "merge a list: earlier mappings win",
			src:   "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nm:\n  <<: [*a, *b]\n  w: 0\n",
			pairs: "*x=1@1 *y=1@1 *z=2@2 w=0@5",
		},
		{
			name:  "several merge keys: earlier wins, no duplicate",
			src:   "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nm:\n  <<: *a\n  <<: *b\n",
			pairs: "*x=1@1 *y=2@2",
		},
		{
			name:  "merged mappings merge in turn",
			src:   "a: &a {x: 1, y: 1}\nb: &b {<<: *a, y: 2}\nm: {<<: *b, z: 3}\n",
			pairs: "*x=1@1 *y=2@2 z=3@3",
		},
		{
			name:  "merge an inline mapping",
			src:   "m:\n  <<: {a: 1}\n",
			pairs: "*a=1@2",
		},
		{
			name:  "quoted << is an ordinary key",
			src:   "m: {\"<<\": x}\n",
			pairs: "<<=x@1",
		},
		{
			name:     "duplicate keys: the first counts",
			src:      "m:\n  a: 1\n  b: 2\n  a: 3\n",
			pairs:    "a=1@2 b=2@3",
			problems: "duplicate a@4(first@2)",
		},
		{
			name:     "duplicate through one alias key node",
			src:      "m: {&k a: 1, *k : 2}\n",
			pairs:    "a=1@1",
			problems: "duplicate a@1(first@1)",
		},
		{
			name:  "problems inside merged mappings are not reported",
			src:   "a: &a {x: 1, x: 2, [1]: 3}\nm: {<<: *a}\n",
			pairs: "*x=1@1",
		},
		{
			name:     "keys that are not scalars",
			src:      "m:\n  [1]: a\n  ? {b: 1}\n  : c\n  ok: d\n",
			pairs:    "ok=d@5",
			problems: "not-scalar@2 not-scalar@3",
		},
		{
			name:     "merge of a scalar",
			src:      "m:\n  a: 1\n  <<: just-a-string\n",
			pairs:    "a=1@2",
			problems: "bad-merge !!str@3",
		},
		{
			name:     "merge of null",
			src:      "m:\n  <<: ~\n",
			problems: "bad-merge !!null@2",
		},
		{
			name:     "merge of a list holding a scalar",
			src:      "a: &a {x: 1}\nm:\n  <<: [*a, 2, [3]]\n",
			pairs:    "*x=1@1",
			problems: "bad-merge !!int@3 bad-merge !!seq@3",
		},
		{
			name:  "a mapping that merges itself stops",
			src:   "m: &m\n  a: 1\n  <<: *m\n",
			pairs: "a=1@2",
		},
		{
			name: "not a mapping",
			src:  "m: [1, 2]\n",
		},
		{
			name: "null",
			src:  "m:\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, m := parse(t, tt.src)
			pairs, problems := Pairs(m)
			gotPairs, gotProblems := show(pairs, problems)
			require.Equal(t, tt.pairs, gotPairs)
			require.Equal(t, tt.problems, gotProblems)
		})
	}
}

func TestPairsOfDocument(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("a: 1\n"), &doc))
	pairs, problems := Pairs(&doc)
	require.Empty(t, problems)
	require.Len(t, pairs, 1)
	require.Nil(t, func() []Pair { p, _ := Pairs(nil); return p }())
}

func TestGet(t *testing.T) {
	doc, _ := parse(t, "base: &b {kind: container}\naction:\n  reassign:\n    <<: *b\n    to: x\n")
	_, action := Get(doc, "action")
	_, reassign := Get(action, "reassign")
	k, v := Get(reassign, "kind")
	require.Equal(t, 1, k.Line)
	require.Equal(t, "container", v.Value)
	k, v = Get(reassign, "match")
	require.Nil(t, k)
	require.Nil(t, v)
	k, v = Get(v, "x")
	require.Nil(t, k)
	require.Nil(t, v)
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"m: ~", "nothing"},
		{"m: {a: 1}", "a mapping"},
		{"m: [1]", "a list"},
		{`m: "null"`, `"null"`},
		{"m: " + strings.Repeat("é", 41), `"` + strings.Repeat("é", 40) + `..."`},
	}
	for _, tt := range tests {
		_, m := parse(t, tt.src)
		require.Equal(t, tt.want, Describe(m), tt.src)
	}
	require.Equal(t, "nothing", Describe(nil))
}
