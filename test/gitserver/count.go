package gitserver

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Counter is a TCP relay on loopback in front of a git daemon that counts
// the bytes the daemon sends to clients (ref advertisements and
// packfiles) and those clients send it, so a test can measure what a ref
// check or a fetch costs on the wire. Clients reach the daemon through
// Counter.URL.
type Counter struct {
	ln       net.Listener
	target   string
	sent     atomic.Int64
	received atomic.Int64
	wg       sync.WaitGroup

	mu    sync.Mutex
	open  int        // connections being relayed
	quiet *sync.Cond // broadcast when one ends
}

// NewCounter starts a counting relay to the daemon s for the test's
// lifetime.
func NewCounter(t testing.TB, s *Server) *Counter {
	t.Helper()
	if s.Kind != Daemon {
		t.Fatalf("gitserver.NewCounter: %s server; only the git daemon's protocol is relayed", s.Kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("counting relay: listen: %v", err)
	}
	c := &Counter{ln: ln, target: s.Addr}
	c.quiet = sync.NewCond(&c.mu)
	c.wg.Add(1)
	go c.serve()
	t.Cleanup(func() {
		ln.Close()
		c.wg.Wait()
	})
	return c
}

// URL is repository name's clone URL through the relay.
func (c *Counter) URL(name string) string { return "git://" + c.ln.Addr().String() + "/" + name }

// Sent is how many bytes the daemon has sent through the relay so far.
func (c *Counter) Sent() int64 { return c.sent.Load() }

// Received is how many bytes clients have sent the daemon so far.
func (c *Counter) Received() int64 { return c.received.Load() }

// Quiet waits until no connection is being relayed: a client's last
// bytes (the flush ending a ref check) may still be on their way to the
// daemon when its call returns.
func (c *Counter) Quiet() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.open > 0 {
		c.quiet.Wait()
	}
}

func (c *Counter) serve() {
	defer c.wg.Done()
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.wg.Add(1)
		c.mu.Lock()
		c.open++
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			c.relay(client)
			c.mu.Lock()
			c.open--
			c.mu.Unlock()
			c.quiet.Broadcast()
		}()
	}
}

// relay copies one connection both ways until either side closes.
func (c *Counter) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(countingWriter{server, &c.received}, client)
		if tc, ok := server.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, err = io.Copy(countingWriter{client, &c.sent}, server)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		client.Close()
	}
	if tc, ok := client.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

// Write counts p before writing it, so the count is never behind what a
// client may have read.
func (cw countingWriter) Write(p []byte) (int, error) {
	cw.n.Add(int64(len(p)))
	n, err := cw.w.Write(p)
	cw.n.Add(int64(n - len(p)))
	return n, err
}
