package rules

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// hideFigures does what the regexp it stands for does.
func TestHideFiguresIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`[0-9]+([.:][0-9]+)*`)
	cases := []string{"", "no digits", "12", "12.0 GiB", "1.2.3 and 4:5", "1.", "1.a", ".5", "a1:b", "at 10:30:15, 3.", "x9..9", "99:"}
	rng := rand.New(rand.NewPCG(1, 1))
	const alphabet = "0123456789.: ab"
	for range 2000 {
		b := make([]byte, rng.IntN(14))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		require.Equal(t, re.ReplaceAllString(c, "#"), hideFigures(c), "%q", c)
	}
}
