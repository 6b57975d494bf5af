package rules

import "github.com/quotawatch/quotawatch/quota"

// ServiceView copies the project-level numbers of a service token's
// entries into the member fields, in place, so that usage, limit and ratio
// speak of the project: a service token sees no member level. It returns
// es.
func ServiceView(es []quota.Entry) []quota.Entry {
	for i := range es {
		q := &es[i].Quota
		q.Usage, q.Limit, q.Pending = q.ProjectUsage, q.ProjectLimit, q.ProjectPending
	}
	return es
}
