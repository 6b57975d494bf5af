package yamlnode

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestSyntax(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
		msg       string
	}{
		// A parser-level problem: yaml.v3 counts from 0 here.
		{"misindented key in a list", "rules:\n  - name: x\n    resource: r\n   when: y\n", 2, "did not find expected '-' indicator"},
		{"unclosed flow mapping, found at the end", "{a: 1, b\n", 2, "did not find expected ',' or '}'"},
		// A scanner-level problem: already 1-based.
		{"tab indentation", "a:\n\tb: 1\n", 2, "found character that cannot start any token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			err := yaml.Unmarshal([]byte(tt.doc), &n)
			require.Error(t, err)
			line, msg := Syntax(err)
			require.Equal(t, tt.line, line, "%v", err)
			require.Equal(t, tt.msg, msg)
		})
	}
}
