package observe

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// LogFormats are the values of --log-format.
var LogFormats = []string{"text", "json"}

// NewLogger returns a logger at level ("debug", "info", ...) writing format:
// "text" (logfmt-like key=value, full timestamps) or "json" (one object per
// line, for log collectors).
func NewLogger(level, format string) (*logrus.Logger, error) {
	l := logrus.New()
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	l.SetLevel(lv)
	switch format {
	case "", "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return l, nil
}
