// Package notify tells people what the fleet did: it derives events
// (rollout started, finished or stopped, node Degraded or Unreachable,
// render failed) from the transition between the stoker/fleet tree the hub
// read and the one it just pushed (Derive, pure), and posts them to the
// receivers the config repo names in .stoker/notifications.yaml, as a
// generic JSON webhook (HMAC-signed when the hub has a key) or a
// Slack-compatible {"text": ...} one (Sender).
//
// A receiver's URL, token and HMAC key are files in the hub's secrets
// directory, never in Git, and never reach a log line or an error
// unredacted. The Sender owns one goroutine and a bounded queue: the
// reconcile loop only enqueues, never waits on HTTP; when the queue is
// full the oldest delivery is dropped and counted. Each delivery is
// retried with apimachinery's wait.Backoff, each attempt has a timeout,
// and request and response bodies are bounded.
//
// It must not import gitsource (or any Git library), agent, nodeops, or
// any other reconciler package: the hub hands it plain api types.
package notify
