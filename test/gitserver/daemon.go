package gitserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// StartDaemon serves the bare repositories under root with `git daemon`
// on 127.0.0.1 (export-all, base-path root, receive-pack enabled, so
// anyone on loopback may push). The caller closes the returned server.
func StartDaemon(root string) (*Server, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("start git daemon: %w", err)
	}
	scratch, err := os.MkdirTemp(filepath.Dir(root), "gitserver-daemon-")
	if err != nil {
		return nil, fmt.Errorf("start git daemon: %w", err)
	}
	var lastErr error
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("start git daemon: git --exec-path: %w", err)
	}
	daemonBin := filepath.Join(strings.TrimSpace(string(execPath)), "git-daemon")
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		// Run git-daemon itself, not the `git daemon` wrapper: killing the
		// wrapper would leave the forked daemon serving.
		cmd := exec.Command(daemonBin,
			"--reuseaddr", "--listen=127.0.0.1", "--port="+strconv.Itoa(port),
			"--export-all", "--base-path="+root, "--enable=receive-pack",
			"--informative-errors", root)
		cmd.Env = gitEnv(nil)
		p, err := startProcess(cmd, filepath.Join(scratch, "daemon.log"))
		if err != nil {
			return nil, err
		}
		if err := waitListening(addr, p.exited); err != nil {
			_ = p.stop()
			lastErr = fmt.Errorf("start git daemon: %w: %s", err, p.log())
			continue // port taken between freePort and bind: try another
		}
		return &Server{Kind: Daemon, Root: root, Addr: addr, stop: func() error {
			err := p.stop()
			os.RemoveAll(scratch)
			return err
		}}, nil
	}
	os.RemoveAll(scratch)
	return nil, lastErr
}
