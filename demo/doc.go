// Package demo runs a whole Stoker fleet on one machine: a `git daemon` on
// 127.0.0.1 serving a bare repo seeded from examples-repo, a hub and
// several agents as separate processes of the stoker binary, each agent
// with its own root and state dir under one temporary directory and
// `--reboot simulate`. Run walks the scripted story of `stoker demo`;
// Fleet is the same harness for the end-to-end tests in test/e2e.
//
// It may import reconciler, gitsource, api, examples-repo and
// test/gitserver; it never imports agent or nodeops (the agents are
// processes, not libraries, here) and touches nothing outside its
// directory.
package demo
