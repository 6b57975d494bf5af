package client

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffFullJitter(t *testing.T) {
	var bounds []int64
	c, err := New(Config{
		AuthURL: "http://127.0.0.1/identity/v2.0", Token: "t",
		Retry: Retry{Attempts: 8, Base: 100 * time.Millisecond, Max: time.Second},
		Rand: func(n int64) int64 {
			bounds = append(bounds, n)
			return n - 1 // the top of the range
		},
	})
	require.NoError(t, err)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		require.Equal(t, w*time.Millisecond, c.backoff(i+1), "after attempt %d", i+1)
	}
	for i, b := range bounds {
		require.Equal(t, int64(want[i]*time.Millisecond)+1, b, "uniform in [0, ceiling]")
	}
	c.rand = func(int64) int64 { return 0 }
	require.Equal(t, time.Duration(0), c.backoff(3), "the bottom of the range")
}

func TestBackoffNoOverflow(t *testing.T) {
	c, err := New(Config{
		AuthURL: "http://127.0.0.1/identity/v2.0", Token: "t",
		Retry: Retry{Base: time.Duration(1) << 61, Max: time.Duration(1<<63 - 2)},
		Rand:  func(n int64) int64 { return n - 1 },
	})
	require.NoError(t, err)
	for a := 1; a < 100; a++ {
		require.Positive(t, c.backoff(a))
	}
}

func TestNewDefaultsAndValidation(t *testing.T) {
	c, err := New(Config{AuthURL: "https://accounts.example.org/identity/v2.0/", Token: "t"})
	require.NoError(t, err)
	require.Equal(t, "https://accounts.example.org/identity/v2.0", c.authURL)
	require.Equal(t, Retry{Attempts: 3, Base: 200 * time.Millisecond, Max: 5 * time.Second}, c.retry)
	require.Equal(t, 30*time.Second, c.timeout)
	require.Equal(t, DefaultPageLimit, c.pageLimit)

	c, err = New(Config{AuthURL: "http://x/identity/v2.0", Token: "t", RequestsPerSecond: 2.5})
	require.NoError(t, err)
	require.Equal(t, 3, c.limiter.Burst())

	bad := []Config{
		{AuthURL: "", Token: "t"},
		{AuthURL: "accounts.example.org/identity", Token: "t"},
		{AuthURL: "ftp://x/identity", Token: "t"},
		{AuthURL: "http://x/identity"},
		{AuthURL: "http://x/identity", Token: "t", Timeout: -1},
		{AuthURL: "http://x/identity", Token: "t", Retry: Retry{Attempts: -1}},
		{AuthURL: "http://x/identity", Token: "t", RequestsPerSecond: -1},
	}
	for _, cfg := range bad {
		_, err := New(cfg)
		require.Error(t, err, "%v", cfg)
	}
}
