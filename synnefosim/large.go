package synnefosim

import (
	"fmt"

	"github.com/quotawatch/quotawatch/quota"
)

// LargeScenario builds a deterministic cloud for benchmarks: one user
// (uuid "00000000-0000-4000-8000-000000000000", token "bench-token") who is
// a member of its system project and of projects-1 others named
// "project-00001"..., each with limits for 8 resources (the 7 api-visible
// ones and astakos.pending_app, shown as if an admin made it visible) and
// one container charged to it. The service token is "bench-service-token".
func LargeScenario(projects int) *Scenario {
	const user = "00000000-0000-4000-8000-000000000000"
	sc := &Scenario{
		ServiceToken: "bench-service-token",
		Users:        []User{{UUID: user, Name: "bench@example.org", Token: "bench-token"}},
	}
	limits := func(i int) map[string]Limit {
		k := int64(i%7 + 1)
		return map[string]Limit{
			quota.DiskSpace:      {Member: k * 10 << 30, Project: k * 20 << 30},
			quota.VM:             {Member: k, Project: 2 * k},
			quota.CPU:            {Member: 4 * k, Project: 8 * k},
			quota.RAM:            {Member: k * 8 << 30, Project: k * 16 << 30},
			quota.Disk:           {Member: k * 100 << 30, Project: k * 200 << 30},
			quota.FloatingIP:     {Member: k, Project: 2 * k},
			quota.PrivateNetwork: {Member: k, Project: 2 * k},
			quota.PendingApp:     {Member: quota.Unlimited, Project: quota.Unlimited},
		}
	}
	for i := 0; i < projects; i++ {
		p := Project{ID: user, System: true, Members: []string{user}, Limits: limits(i)}
		if i > 0 {
			p = Project{
				ID:      fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
				Name:    fmt.Sprintf("project-%05d", i),
				Owner:   user,
				Members: []string{user},
				Limits:  limits(i),
			}
		}
		sc.Projects = append(sc.Projects, p)
		sc.Containers = append(sc.Containers, Container{
			Account: user, Name: fmt.Sprintf("container-%05d", i), Project: p.ID,
			Bytes: int64(i%97+1) << 24, Count: int64(i%13 + 1),
		})
	}
	return sc
}
