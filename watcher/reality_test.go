package watcher_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/synnefosim"
)

// cpuProjects is alice with a system project full of CPU and two projects
// A and B with room; a shared VM of 4 CPUs sits in the system project.
func cpuProjects() *synnefosim.Scenario {
	lims := func(cpu int64) map[string]synnefosim.Limit {
		return map[string]synnefosim.Limit{
			quota.VM:   {Member: 5, Project: 5},
			quota.CPU:  {Member: cpu, Project: cpu},
			quota.RAM:  {Member: 64 * gib, Project: 64 * gib},
			quota.Disk: {Member: 100 * gib, Project: 100 * gib},
		}
	}
	return &synnefosim.Scenario{
		Users: []synnefosim.User{{UUID: alice, Name: "alice@example.org", Token: tokenA}},
		Projects: []synnefosim.Project{
			{ID: alice, System: true, Members: []string{alice}, Limits: lims(4)},
			{ID: projA, Name: "project-a", Owner: alice, Members: []string{alice}, Limits: lims(16)},
			{ID: projB, Name: "project-b", Owner: alice, Members: []string{alice}, Limits: lims(8)},
		},
		Flavors: []synnefosim.Flavor{{ID: 1, VCPUs: 4, RAM: 4096, Disk: 20}},
		Servers: []synnefosim.VM{{ID: 4242, Name: "shared-vm", Owner: alice, Flavor: 1, Status: "ACTIVE", Shared: true}},
	}
}

const vmRule = `
  - name: vm-rebalance
    resource: cyclades.cpu
    when: ratio >= 1
    clear: ratio < 0.8
    action:
      reassign:
        kind: server
        to: ["project-*"]
%s`

func server(t *testing.T, h *harness, id int) synnefosim.VM {
	t.Helper()
	for _, s := range h.cloud.Cloud.State().Servers {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("server %d not found", id)
	return synnefosim.VM{}
}

func TestSharedVMStaysShared(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		shared      bool
	}{
		{"kept by default", "", true},
		{"unshared on purpose", "        keep_shared: false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessFrom(t, cpuProjects(), fmt.Sprintf(vmRule, tc.extra))
			rep := h.cycle()
			require.Len(t, rep.Plan, 1, "%+v", rep.Plan)
			require.Equal(t, quota.ActionVerified, rep.Plan[0].State, "%+v", rep.Plan[0])
			vm := server(t, h, 4242)
			require.Equal(t, projA, vm.Project)
			require.Equal(t, tc.shared, vm.Shared)
			for _, v := range h.cloud.Cloud.State().Volumes {
				if v.Server == 4242 && v.Index == 0 {
					require.Equal(t, tc.shared, v.Shared, "the system volume follows its VM")
				}
			}
		})
	}
}
