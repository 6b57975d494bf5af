// Package client is a typed client for the parts of the Synnefo API that a
// quota watchdog needs: Astakos identity, resources, quotas and projects;
// Pithos container listings and reassignment; Cyclades servers, flavors,
// floating IPs, private networks and volumes, and their reassignment.
//
// The wire format follows docs/synnefo-wire.md. A Client authenticates lazily
// (POST {identity}/tokens) and discovers every other endpoint from the
// service catalog, appending the version to the versionless network and
// volume URLs. Every request, including the token request, passes through
// one token-bucket rate limiter (Config.Limiter lets several clients share
// one). The /quotas answer, which is large on a big cloud, is decoded one
// project at a time straight into quota.Quota values. GET and HEAD requests are retried on 5xx
// answers, timeouts and connection errors with capped exponential backoff
// and full jitter; POST requests are never retried, because a reassignment
// that reached the cloud must not be sent twice blindly.
//
// Items, Item and Reassign are the high-level calls the daemon uses: they
// list what the user owns in a project with the quota each item would
// carry (quota.Quantities) and whether the cloud would refuse to move it
// now (Busy), read an item back, and move it with the call of its kind.
//
// Failures from the cloud are *Error values; IsOverLimit, IsNotFound,
// IsNotMember and IsUnauthorized classify them the way the cloud means them
// (by HTTP status and message, not by the varying error key).
//
// The API token is sent only in the X-Auth-Token header (and in the body of
// the token request). It never appears in an error, a log line or a
// formatted Config or Client: error texts are scrubbed defensively.
//
// A Config with Service set uses a component (service) token: it reads the
// public catalog (a token request with an empty body) and can only call the
// service endpoints, ServiceProjectQuotas and ServiceQuotas; calls that act
// as a user refuse to run.
package client
