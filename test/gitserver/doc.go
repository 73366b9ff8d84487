// Package gitserver starts real Git servers on 127.0.0.1 for tests and for
// `stoker demo`: `git daemon` with receive-pack enabled (git://),
// `git http-backend` behind net/http/cgi with basic and bearer auth
// (http://), and sshd with a git-shell forced command and generated host and
// client keys (ssh://). Repositories are bare directories under one base
// path, created and seeded with the git CLI so tests check Stoker's Git code
// against an independent implementation.
//
// New and the Server methods take a testing.TB and clean up with t.Cleanup;
// StartDaemon, StartHTTP and StartSSH are the same servers without a
// testing.TB, closed by the caller. It imports no other package of ours.
package gitserver
