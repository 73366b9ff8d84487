// Package e2e holds Stoker's end-to-end fleet tests (build tag e2e): a real
// `git daemon` on 127.0.0.1, the real stoker binary started as hub and
// agent processes (STOKER_BIN, else built once in TestMain), agent roots
// under t.TempDir(), and for real systemd an agent inside a
// systemd-nspawn container (test/nspawn). `make e2e` runs them.
package e2e
