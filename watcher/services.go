package watcher

import (
	"context"
	"fmt"

	"github.com/quotawatch/quotawatch/quota"
)

// serviceView is one component token's client.
type serviceView struct {
	component string // "" when unknown (the single service_token)
	cloud     ServiceCloud
}

func componentLabel(c string) string {
	if c == "" {
		return "(component unknown)"
	}
	return c
}

// serviceUnion polls every component token and merges what they see: each
// reads only its own component's resources, so no one token gives the
// cloud-wide view. A resource seen by two tokens is taken from the first.
// One token failing fails the view: a partial union would read as series
// gone.
func serviceUnion(ctx context.Context, views []serviceView) ([]quota.Entry, error) {
	if len(views) == 1 {
		qs, err := views[0].cloud.ServiceProjectQuotas(ctx)
		if err != nil {
			return nil, err
		}
		return qs.Entries(), nil
	}
	type pr struct{ project, resource string }
	seen := map[pr]bool{}
	var out []quota.Entry
	for _, v := range views {
		qs, err := v.cloud.ServiceProjectQuotas(ctx)
		if err != nil {
			return nil, fmt.Errorf("service token %s: %w", componentLabel(v.component), err)
		}
		for _, e := range qs.Entries() {
			k := pr{e.Project, e.Resource}
			if !seen[k] {
				seen[k] = true
				out = append(out, e)
			}
		}
	}
	return out, nil
}
