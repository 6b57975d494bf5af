// Package synnefosim is a stateful, in-memory Synnefo cloud served over real
// HTTP, for tests, benchmarks, `quotawatch sim` and `quotawatch demo`.
//
// A Scenario (YAML or built in code) describes users, projects with their
// limits, and the items charged to them: Pithos containers, Cyclades servers,
// volumes, floating IPs and private networks. Usage is never stored: it is
// derived from the items and kept in aggregate maps that every change updates,
// so /quotas is always consistent with what the listings show.
//
// The wire format follows docs/synnefo-wire.md: Astakos identity, account
// (quotas, projects, memberships, modification applications, user
// catalogs), Pithos container listing and reassignment (with the ?update
// quirk), and the Cyclades reassign actions with their exact error bodies.
// All APIs live on one host:
//
//	/identity/v2.0    /account/v1.0    /object-store/v1
//	/compute/v2.0     /network/v2.0    /volume/v2.0 (also /volume/v2)
//
// The catalog lists network and volume versionless, as the real cloud does.
//
// Control endpoints under /_sim/ (GET state, GET/DELETE requests, POST
// containers/{account}/{name}/grow, GET/POST faults, GET/POST clock
// {"advance": "48h"}, POST users/{uuid}/token to renew a token, POST drift
// {user, project, resource, amount}, POST memberships {project, user,
// state}) let tests and demos inspect and steer the cloud; the same
// controls are methods of Cloud. Faults inject latency and error statuses
// on matching API requests.
//
// Timestamps come from Cloud.Now, a fixed instant (2026-01-01T00:00:00Z)
// unless replaced, moved on by AdvanceClock, so responses are
// deterministic. Tokens are issued when the cloud starts serving and
// expire after each user's token_duration (30 days by default). LargeScenario builds the
// 10,000-project cloud the benchmarks use.
//
// The Scenario's VM type is named VM (not Server) because Server is the
// httptest-style server that serves a Cloud.
package synnefosim
