// Package e2e holds Stoker's end-to-end fleet tests (build tag e2e): a real
// `git daemon` on 127.0.0.1, the real stoker binary started as hub and
// agent processes (STOKER_BIN, else built once in TestMain), agent roots
// under t.TempDir(), and for real systemd an agent inside a
// systemd-nspawn container (test/nspawn). `make e2e` runs them.
//
// The crash test (crash_test.go) kills the agent with SIGKILL at random
// moments during applies; STOKER_CRASH_KILLS sets how many times (default
// 5, as CI runs it; run it with 100 or more before touching the apply
// path) and STOKER_CRASH_SEED replays a failing run's seed.
package e2e
