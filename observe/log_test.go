package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewLoggerFormats(t *testing.T) {
	l, err := NewLogger("info", "json")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	l.SetOutput(&b)
	l.WithField("node", "w1").Info("hello")
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["node"] != "w1" || m["msg"] != "hello" || m["level"] != "info" {
		t.Fatalf("json log line %q: %v", b.String(), err)
	}
	l, _ = NewLogger("info", "text")
	b.Reset()
	l.SetOutput(&b)
	l.WithField("node", "w1").Info("hello")
	if !strings.Contains(b.String(), "node=w1") || !strings.Contains(b.String(), `msg=hello`) {
		t.Fatalf("text log line %q", b.String())
	}
	if _, err := NewLogger("info", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("bad format: %v", err)
	}
}

func TestHealthWindow(t *testing.T) {
	h := NewHealth(time.Minute)
	now := time.Now()
	h.now = func() time.Time { return now }
	if err := h.check(); err != nil {
		t.Fatal(err)
	}
	h.Record(errors.New("git down"))
	now = now.Add(2 * time.Minute)
	if err := h.check(); err == nil || !strings.Contains(err.Error(), "git down") {
		t.Fatalf("stale health: %v", err)
	}
	h.Record(nil)
	if err := h.check(); err != nil {
		t.Fatal(err)
	}
}
