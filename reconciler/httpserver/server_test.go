package httpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// waitBound bounds every wait on the server: the tests wait on the event
// (the server closing a connection, a response arriving), never on a
// short deadline, so a loaded machine slows them down but cannot fail them.
const waitBound = 2 * time.Minute

func serve(t *testing.T, lim Limits) (*Server, *logtest.Hook, *int) {
	t.Helper()
	log, hook := logtest.NewNullLogger()
	triggered := 0
	s, err := Listen(Options{Listen: "127.0.0.1:0", Health: NewHealth(), HealthMaxAge: time.Hour,
		Gatherer: prometheus.NewRegistry(), WebhookSecret: func() []byte { return []byte("s3cret") },
		Trigger: func() error { triggered++; return nil }, Limits: lim, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, hook, &triggered
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits until the server closes c: a read returns EOF or a
// reset, not our own deadline. It returns what was read.
func closedByServer(t *testing.T, c net.Conn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitBound)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server still holds the connection after %v", waitBound)
	}
	return string(got)
}

// TestHalfSentRequestsClosed: 300 connections that send half a request
// line and headers are all closed by the server after ReadHeaderTimeout;
// the server keeps serving.
func TestHalfSentRequestsClosed(t *testing.T) {
	s, _, _ := serve(t, Limits{ReadHeaderTimeout: 300 * time.Millisecond, MaxConns: 1000})
	conns := make([]net.Conn, 300)
	for i := range conns {
		conns[i] = dial(t, s.Addr())
		if _, err := io.WriteString(conns[i], "GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for i, c := range conns {
		if got := closedByServer(t, c); strings.Contains(got, "200 OK") {
			t.Fatalf("conn %d: a half-sent request was served: %q", i, got)
		}
	}
	t.Logf("300 half-sent requests closed %v after the last was opened", time.Since(start).Round(time.Millisecond))
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz after the flood: %d", resp.StatusCode)
	}
}

// TestSlowBodyAndIdleClosed: a request whose body never finishes is cut
// by ReadTimeout, and a keep-alive connection left idle by IdleTimeout
// (before, neither had a timeout: both were held forever).
func TestSlowBodyAndIdleClosed(t *testing.T) {
	s, _, triggered := serve(t, Limits{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	slow := dial(t, s.Addr())
	fmt.Fprintf(slow, "POST /hooks/git HTTP/1.1\r\nHost: hub\r\nX-Gitlab-Token: s3cret\r\nContent-Length: 1000\r\n\r\n{\"ref\":")
	if got := closedByServer(t, slow); strings.Contains(got, "HTTP/1.1 202") {
		t.Fatalf("half a body triggered a reconcile: %q", got)
	}
	idle := dial(t, s.Addr())
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if rest := closedByServer(t, idle); rest != "" {
		t.Fatalf("idle connection got %q", rest)
	}
	if *triggered != 0 {
		t.Fatalf("triggered %d reconciles", *triggered)
	}
}

// TestConnectionLimit: with MaxConns held by slow clients, the next
// request waits (it is not served) until one of them goes.
func TestConnectionLimit(t *testing.T) {
	s, _, _ := serve(t, Limits{ReadHeaderTimeout: waitBound, ReadTimeout: waitBound, MaxConns: 4})
	var held []net.Conn
	for i := 0; i < 4; i++ {
		c := dial(t, s.Addr())
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: hub\r\n")
		held = append(held, c)
	}
	// The server reads a request only on a connection it accepted: the
	// fifth one, complete, gets no answer while four are held. (A negative
	// check: waiting longer would only make it stronger.)
	next := dial(t, s.Addr())
	io.WriteString(next, "GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
	next.SetReadDeadline(time.Now().Add(time.Second))
	if n, _ := next.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a fifth connection was served while MaxConns=4 were held")
	}
	held[0].Close()
	if got := closedByServer(t, next); !strings.Contains(got, "200 OK") {
		t.Fatalf("after one slot freed: %q, want 200", got)
	}
}

// TestHeaderAndBodyLimits: headers over MaxHeaderBytes get 431, a webhook
// body over MaxBodyBytes 413 (it used to be cut silently and fail its
// signature), and every rejected webhook is logged with the client.
func TestHeaderAndBodyLimits(t *testing.T) {
	s, hook, triggered := serve(t, Limits{MaxHeaderBytes: 4 << 10, MaxBodyBytes: 1 << 10})
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("big headers: %d, want 431", resp.StatusCode)
	}
	for _, chunked := range []bool{false, true} {
		body := io.Reader(strings.NewReader(`{"ref":"` + strings.Repeat("x", 2<<10) + `"}`))
		if chunked {
			body = io.MultiReader(body) // unknown length: sent chunked
		}
		req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/hooks/git", body)
		req.Header.Set("X-Gitlab-Token", "s3cret")
		req.Header.Set("X-Gitlab-Event", "Push Hook")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("big body (chunked %v): %d, want 413", chunked, resp.StatusCode)
		}
	}
	req, _ = http.NewRequest("POST", "http://"+s.Addr()+"/hooks/git", strings.NewReader("{}"))
	req.Header.Set("X-Gitlab-Token", "wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if *triggered != 0 {
		t.Fatalf("triggered %d reconciles", *triggered)
	}
	var rejected []string
	for _, e := range hook.AllEntries() {
		if strings.HasPrefix(e.Message, "rejected webhook") {
			rejected = append(rejected, fmt.Sprintf("%v %v %s", e.Data["status"], e.Data["event"], e.Message))
			if e.Data["remote"] == "" {
				t.Errorf("rejection logged without the client: %v", e.Data)
			}
		}
	}
	if len(rejected) != 3 || !strings.Contains(rejected[0], "413 Push Hook") || !strings.Contains(rejected[2], "401") {
		t.Fatalf("rejections logged: %q, want two 413 and one 401", rejected)
	}
}
