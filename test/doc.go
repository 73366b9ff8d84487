// Package test holds Stoker's end-to-end tests (behind the e2e build tag)
// and the test servers other packages' tests start: a real Git server on
// loopback, a real kube-apiserver, systemd-nspawn nodes.
package test
