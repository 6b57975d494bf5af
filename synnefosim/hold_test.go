package synnefosim

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// charged returns the project alice's container is charged to.
func charged(s *Server, name string) string {
	for _, c := range s.Cloud.State().Containers {
		if c.Name == name && c.Account == alice {
			return c.Charged
		}
	}
	return ""
}

// A held reassign lands after the hold even though its client gave up
// waiting for the answer: the cloud was still processing it.
func TestHeldRequestIsAppliedAfterItsClientLeft(t *testing.T) {
	s := startFile(t, "multi.yaml")
	hold := 400 * time.Millisecond
	s.Cloud.SetFaults([]Fault{{Path: "/object-store/v1/*", Method: "POST", Hold: Duration(hold)}})
	before := charged(s, "data")
	require.NotEqual(t, lab, before)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/object-store/v1/"+alice+"/data?update&format=json", nil)
	require.NoError(t, err)
	req.Header.Set("X-Auth-Token", "alice-token")
	req.Header.Set("X-Container-Policy-Project", lab)
	start := time.Now()
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the client gives up before the answer")
	require.Equal(t, before, charged(s, "data"), "still being processed")

	require.Eventually(t, func() bool { return charged(s, "data") == lab }, 5*time.Second, 10*time.Millisecond,
		"applied once the hold is over")
	require.GreaterOrEqual(t, time.Since(start), hold)
	// The request is logged once it is served, just after it applied.
	var posts []Request
	require.Eventually(t, func() bool {
		posts = posts[:0]
		for _, r := range s.Cloud.Requests() {
			if r.Method == http.MethodPost {
				posts = append(posts, r)
			}
		}
		return len(posts) > 0
	}, 5*time.Second, 10*time.Millisecond, "the POST is logged")
	require.Len(t, posts, 1)
	require.Equal(t, http.StatusAccepted, posts[0].Status, "served as usual")

	// Other requests are not held; GETs go on during a hold.
	r := do(t, s, call{Path: "/object-store/v1/" + alice + "?format=json", Token: "alice-token"})
	require.Equal(t, http.StatusOK, r.Status)
}

// Every applies to holds as to other faults, and a hold then a status is
// the status after the wait.
func TestHoldEveryAndStatus(t *testing.T) {
	s := startFile(t, "multi.yaml")
	hold := 200 * time.Millisecond
	s.Cloud.SetFaults([]Fault{{Path: "/account/v1.0/quotas", Hold: Duration(hold), Every: 2, Status: 503}})
	timed := func() (int, time.Duration) {
		start := time.Now()
		r := do(t, s, call{Path: "/account/v1.0/quotas", Token: "alice-token"})
		return r.Status, time.Since(start)
	}
	st, d := timed()
	require.Equal(t, http.StatusOK, st)
	require.Less(t, d, hold, "the first is not held")
	st, d = timed()
	require.Equal(t, http.StatusServiceUnavailable, st)
	require.GreaterOrEqual(t, d, hold, "the second is")
}

func TestHoldValidation(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault Fault
		want  string
	}{
		{"negative", Fault{Path: "*", Hold: Duration(-time.Second), Status: 503}, "faults[0].hold: hold must not be negative"},
		{"hold only is an effect", Fault{Path: "*", Hold: Duration(time.Second)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Scenario{Faults: []Fault{tt.fault}}).Validate()
			if tt.want == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.want)
			}
		})
	}
}
