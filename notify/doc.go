// Package notify tells people in Slack and by e-mail what quotawatch saw
// and did.
//
// Three notifiers, Webhook, Bot and Email, share one contract with the
// daemon's outbox: Notify(ctx, pending, settle) takes a notifier's due
// events in the order they were enqueued, each with how many times it was
// tried before, and reports an Outcome for every event to settle as soon as
// it is known, so a delivered event is recorded before the next one is sent.
//
//   - Webhook posts to an incoming webhook. All the events of a Notify
//     become one message, one line each under a header that counts them
//     ("2 firing, 1 moved, 1 resolved"), split into several when Block
//     Kit's limits (50 blocks, 3000 characters per section, 150 per
//     header) or the length a message is read at are reached.
//   - Bot posts with a bot token through the Web API, one event at a time.
//     The first event of an incident (rule, account, project, resource)
//     becomes a parent message; later events are thread replies, and the
//     parent is edited to show the incident's current state (firing →
//     moved → resolved) under a first line that names the incident
//     whatever its latest event. The Bot reads and records each
//     incident's Thread through a Threads the caller gives it (the
//     daemon's store). A firing event that is not a repeat always opens a
//     new thread, so a thread need not be forgotten on resolution. Poll
//     events (poll_failed, poll_recovered) are plain messages.
//   - Email writes one plain-text message per person over SMTP: a move that
//     was made goes to the owners of the item and of both projects, who
//     learn what moved, why and how to have it moved back; every event goes
//     to the addresses listed. See Email for its delivery rules.
//
// # Digests
//
// When more than Options.DigestAfter (default 5) incidents of one rule
// open, fire on (repeat) or resolve in one cycle (events of one rule, kind
// and time), a notifier tells them in one digest: how many, on what, the
// ten fullest in full, and a link to the status page when
// Options.StatusURL is set. A webhook's digest names every other incident
// too, by project. A bot's digest is a parent message with the incidents'
// events as lines in its thread, in as few replies as the limits allow; a
// new incident's thread is then the digest's, so its later events reply
// there, and a digest's parent is never rewritten for one incident (the
// bot keeps a record of its digests among the threads, under keys no
// incident has). An incident with a thread of its own keeps it, and its
// parent is brought up to date. A digest whose replies failed is retried
// under the parent already posted. The other events of one Notify bound for
// one digest's thread are sent together, as lines. Nothing is lost: every incident is a
// line of a digest's thread or of the digest itself.
//
// An Outcome says whether its event was delivered and, if not, either a
// time to retry (Slack's Retry-After, else a backoff: 5s doubling per
// previous attempt up to a minute, see Options.RetryBase) or a permanent
// failure (invalid_auth, channel_not_found, not_in_channel, any 4xx but 408
// and 429). A rate limit (429 with a Retry-After) is waited out within the
// call when the context leaves time for it, and the same message is tried
// again, so a backlog drains at Slack's rate. Any other failure that can
// pass stops delivery: the events behind it were not tried and share its
// Outcome, so order holds. A bot event that failed for good is set aside
// alone; for a webhook the whole rest is. Sends are paced by a token bucket
// (Options.Rate, default one message per second). If the context ends
// while pacing, the rest is not tried: its Err matches ErrPaced and it is
// due again at once (RetryAt is now).
//
// Secrets never leave the package: errors carry neither the webhook URL
// nor the token (a *url.Error's URL is replaced, and every error text is
// scrubbed of both), and rendered messages contain neither.
//
// Rendering (Render, RenderBatch) is one line per event, with a colour by
// severity (red, orange, blue circles) and times as Slack date tokens,
// which each reader sees in their own time zone. It speaks in human units: bytes as GiB, MiB
// or KiB with one decimal, counts plain, 2^63-1 as "unlimited"; usage
// against the effective limit with its percentage; the trend
// ("+1.2 GiB/day, full in 3.2 days"); moves with the item, its quantities
// and the source and destination before and after; dry runs marked
// "DRY RUN: would move". Poll events carry the error text in Reason and
// the start of the failure in Since.
//
// Package slacksink is a Slack-compatible fake for tests and demos.
package notify
