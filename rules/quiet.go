package rules

import (
	"github.com/quotawatch/quotawatch/quota"
)

// SilenceFunc reports whether the incident of key (in the project named
// projectName) is silenced; reason says by what, for people ("silenced by
// 3: maintenance").
type SilenceFunc func(key quota.InstanceKey, projectName string) (reason string, ok bool)

// SilencedFiring is a firing instance that a silence keeps from acting.
type SilencedFiring struct {
	Firing
	Reason string
}

// A silenced incident is evaluated and its state kept like any other, but
// nothing of it is told: its firing, repeats and resolution make no event,
// and it gives the planner no firing. Its firing instance keeps a zero
// LastNotified, which is what "never told" means: once no silence holds it
// the incident is told (as still firing), and its resolution is told only
// if it was.

// silenced asks in.Silenced about the incident of ev.
func (e *Engine) silenced(in Input, ev quota.Event) (string, bool) {
	if in.Silenced == nil || ev.Key.Rule == "" {
		return "", false
	}
	return in.Silenced(ev.Key, ev.ProjectName)
}

// tell adds the resolution ev of the firing instance inst, unless the
// incident was never told or is silenced.
func (e *Engine) tell(in Input, out *Output, inst quota.Instance, ev quota.Event) {
	if inst.LastNotified.IsZero() {
		return
	}
	if _, muted := e.silenced(in, ev); muted {
		return
	}
	out.Events = append(out.Events, ev)
}

type projectResource struct{ project, resource string }

// shadow is what the accounts see this cycle: the service view, which
// sees every project of the cloud at project level, leaves those series
// out, so that one incident is reported (and acted on) once, as the
// account's.
type shadow struct {
	series  map[projectResource]bool
	service map[string]bool // account names of service views
}

// shadowed collects the series of every account (not service) snapshot of
// the cycle. An account whose poll failed is blind this cycle but still
// sees its projects: the series of its kept instances count too, so that
// the service view does not open an incident the account will report when
// it recovers.
func shadowed(in Input) shadow {
	sh := shadow{series: map[projectResource]bool{}, service: map[string]bool{}}
	any := false
	for i := range in.Snapshots {
		if in.Snapshots[i].Service {
			sh.service[in.Snapshots[i].Account] = true
			any = true
		}
	}
	if !any {
		return sh
	}
	for i := range in.Snapshots {
		s := &in.Snapshots[i]
		if s.Service {
			continue
		}
		if _, failed := in.Failed[s.Account]; failed {
			continue
		}
		for j := range s.Entries {
			sh.series[projectResource{s.Entries[j].Project, s.Entries[j].Resource}] = true
		}
	}
	for k := range in.Instances {
		if _, failed := in.Failed[k.Account]; failed && !sh.service[k.Account] {
			sh.series[projectResource{k.Project, k.Resource}] = true
		}
	}
	return sh
}

// has reports whether k is a service-view instance of a series an account
// sees.
func (sh shadow) has(in Input, k quota.InstanceKey) bool {
	return sh.service[k.Account] && sh.series[projectResource{k.Project, k.Resource}]
}
