package store

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
)

// crashEnv makes the test binary act as the child of TestCrash.
const crashEnv = "QUOTAWATCH_STORE_CRASH_CHILD"

const crashSeries = 40

// crashBatch is cycle n of the child's deterministic workload: history
// that changes and churns, the cycle number in an account state, and one
// outbox message per cycle.
func crashBatch(n int) *Batch {
	at := start.Add(time.Duration(n) * 20 * time.Minute) // a block every 72 cycles
	sn := quota.Snapshot{Account: "acct", Time: at}
	for s := range crashSeries {
		if (n+s)%(s+5) == 0 {
			continue // absent from this poll
		}
		u := int64(s*1000 + (n/(s%4+1))*37)
		sn.Entries = append(sn.Entries, quota.Entry{Project: fmt.Sprintf("p%d", s%3), Resource: fmt.Sprintf("r%d", s),
			Quota: quota.Quota{Usage: u, Limit: 1 << 40, ProjectUsage: u + int64(n%7), ProjectLimit: 1 << 41}})
	}
	return &Batch{
		Time:      at,
		Snapshots: []quota.Snapshot{sn},
		Accounts:  []quota.AccountState{{Account: "acct", Failures: n}},
		Outbox:    []Outgoing{{Notifier: "ops", Event: quota.Event{Kind: quota.EventFiring, Key: quota.InstanceKey{Rule: strconv.Itoa(n)}}}},
	}
}

// crashChild appends cycles after the last committed one until killed,
// reporting each on stdout once Commit has returned.
func crashChild(path string) {
	st, err := Open(path, Options{LockTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	accs, err := st.Accounts()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	n := 1
	if len(accs) == 1 {
		n = accs[0].Failures + 1
	}
	for ; ; n++ {
		if err := st.Commit(crashBatch(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if n%5 == 0 {
			_ = st.Release() // as the daemon does between cycles
		}
		fmt.Printf("committed %d\n", n)
	}
}

func TestCrash(t *testing.T) {
	if p := os.Getenv(crashEnv); p != "" {
		crashChild(p)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	reported := 0
	for round, target := range []int{30, 100, 90, 160} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		base := reported
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed "))
			require.NoError(t, err, sc.Text())
			require.Equal(t, reported+1, n, "cycles are consecutive")
			reported = n
			if n >= base+target {
				break
			}
		}
		require.NoError(t, cmd.Process.Kill()) // SIGKILL, mid-cycle or not
		// The child may have committed and reported more cycles than were
		// read before the kill: they wait in the pipe.
		for sc.Scan() {
			n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed "))
			require.NoError(t, err, sc.Text())
			require.Equal(t, reported+1, n, "cycles are consecutive")
			reported = n
		}
		_ = cmd.Wait()
		require.NotContains(t, stderr.String(), "store", "child failed: %s", stderr.String())

		st, err := Open(path, Options{LockTimeout: 5 * time.Second})
		require.NoError(t, err, "the daemon lock died with the child")
		accs, err := st.Accounts()
		require.NoError(t, err)
		require.Len(t, accs, 1)
		last := accs[0].Failures
		// The cycle in flight at the kill may or may not have landed.
		require.GreaterOrEqual(t, last, reported, "round %d", round)
		require.LessOrEqual(t, last, reported+1, "round %d", round)
		reported = last

		m := &model{polls: map[string][]modelPoll{}}
		var wantRules []string
		for n := 1; n <= last; n++ {
			b := crashBatch(n)
			m.add(b.Snapshots[0])
			wantRules = append(wantRules, strconv.Itoa(n))
		}
		checkAgainstModel(t, st, m, uint64(round))
		due, err := st.Due("ops", start.Add(time.Duration(last+1)*time.Hour))
		require.NoError(t, err)
		var rules []string
		for _, d := range due {
			rules = append(rules, d.Event.Key.Rule)
		}
		require.Equal(t, wantRules, rules, "every committed message, in order, nothing else")
		require.NoError(t, st.Close())
	}
}
