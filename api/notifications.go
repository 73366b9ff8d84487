package api

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// NotificationsFile is where the config repo names the hub's notification
// receivers (Stoker's, not MCO's). It says who hears about what; the
// receivers' URLs and secrets are the hub's own files, never Git's.
const NotificationsFile = ".stoker/notifications.yaml"

// MaxNotificationsSize bounds NotificationsFile, checked before it is read;
// MaxReceivers bounds the receivers it may name.
const (
	MaxNotificationsSize = 64 << 10
	MaxReceivers         = 32
)

// Receiver types.
const (
	// ReceiverWebhook posts each event as JSON (NotificationEvent), signed
	// with an HMAC-SHA256 X-Signature header when the hub has a key for it.
	ReceiverWebhook = "webhook"
	// ReceiverSlack posts {"text": ...}, a Slack-compatible incoming webhook.
	ReceiverSlack = "slack"
)

// EventType names what happened in the fleet.
type EventType string

// Event types, each derived from a transition between two stoker/fleet
// trees.
const (
	EventRolloutStarted  EventType = "RolloutStarted"
	EventRolloutFinished EventType = "RolloutFinished"
	EventRolloutStopped  EventType = "RolloutStopped"
	EventNodeDegraded    EventType = "NodeDegraded"
	EventNodeUnreachable EventType = "NodeUnreachable"
	EventRenderFailed    EventType = "RenderFailed"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventRolloutStarted, EventRolloutFinished, EventRolloutStopped,
	EventNodeDegraded, EventNodeUnreachable, EventRenderFailed}

// Notifications is NotificationsFile.
type Notifications struct {
	Receivers []Receiver `json:"receivers"`
}

// Receiver is one place the hub posts events to.
type Receiver struct {
	Name string `json:"name"`
	// Type is ReceiverWebhook or ReceiverSlack.
	Type string `json:"type"`
	// Events it gets; empty means all.
	Events []EventType `json:"events,omitempty"`
	// Pools whose events it gets; empty means all.
	Pools []string `json:"pools,omitempty"`
	// SecretRef names the hub's directory <secrets-dir>/<secretRef>/ with
	// url and the optional token and hmac-key files; default Name.
	SecretRef string `json:"secretRef,omitempty"`
}

// Secret returns the receiver's secret directory name.
func (r Receiver) Secret() string {
	if r.SecretRef != "" {
		return r.SecretRef
	}
	return r.Name
}

// Wants reports whether r gets an event of type t about pools.
func (r Receiver) Wants(t EventType, pools []string) bool {
	if len(r.Events) > 0 && !containsEvent(r.Events, t) {
		return false
	}
	if len(r.Pools) == 0 {
		return true
	}
	for _, p := range pools {
		for _, q := range r.Pools {
			if p == q {
				return true
			}
		}
	}
	return false
}

func containsEvent(ts []EventType, t EventType) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// secretKeys are keys that would put a secret into Git; each is refused
// with a pointer to the hub's secrets directory.
var secretKeys = []string{"url", "address", "token", "hmacKey", "hmac-key", "secret", "password", "headers", "webhookURL", "channel"}

var receiverKeys = map[string]bool{"name": true, "type": true, "events": true, "pools": true, "secretRef": true}

// ParseNotifications reads NotificationsFile (its size checked by the
// caller against MaxNotificationsSize): every problem, with file and
// field, and no receiver at all when there is one.
func ParseNotifications(file string, data []byte) (*Notifications, Problems) {
	var ps Problems
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{File: file, Field: field, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
	}
	if len(data) > MaxNotificationsSize {
		add("", "is %d bytes, more than %d", len(data), MaxNotificationsSize)
		return nil, ps
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		add("", "does not parse: %v", err)
		return nil, ps
	}
	for k := range raw {
		if k != "receivers" {
			add(k, "unknown field (want receivers)")
		}
	}
	list, ok := raw["receivers"].([]any)
	if raw["receivers"] != nil && !ok {
		add("receivers", "must be a list")
	}
	if len(list) > MaxReceivers {
		add("receivers", "%d receivers, more than %d", len(list), MaxReceivers)
		return nil, ps
	}
	out := &Notifications{}
	seen := map[string]bool{}
	for i, item := range list {
		at := fmt.Sprintf("receivers[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			add(at, "must be a mapping")
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		bad := false
		for _, k := range keys {
			switch {
			case containsString(secretKeys, k):
				add(at+"."+k, "a receiver's URL and secrets never come from Git: put them in the hub's --notify-secrets-dir, as <dir>/%s/{url,token,hmac-key}, and name that directory with secretRef", secretRefOf(m))
				bad = true
			case !receiverKeys[k]:
				add(at+"."+k, "unknown field (want name, type, events, pools, secretRef)")
				bad = true
			}
		}
		if bad {
			continue
		}
		enc, err := json.Marshal(m)
		var r Receiver
		if err == nil {
			err = json.Unmarshal(enc, &r)
		}
		if err != nil {
			add(at, "%v", err)
			continue
		}
		for _, e := range validation.IsDNS1123Label(r.Name) {
			add(at+".name", "%q: %s", r.Name, e)
		}
		if seen[r.Name] {
			add(at+".name", "%q names a receiver twice", r.Name)
		}
		seen[r.Name] = true
		if r.Type != ReceiverWebhook && r.Type != ReceiverSlack {
			add(at+".type", "%q is not one of %s, %s", r.Type, ReceiverWebhook, ReceiverSlack)
		}
		for j, e := range r.Events {
			if !containsEvent(EventTypes, e) {
				add(fmt.Sprintf("%s.events[%d]", at, j), "%q is not one of %s", e, eventList())
			}
		}
		for j, p := range r.Pools {
			for _, e := range validation.IsDNS1123Subdomain(p) {
				add(fmt.Sprintf("%s.pools[%d]", at, j), "%q: %s", p, e)
			}
		}
		if r.SecretRef != "" {
			for _, e := range validation.IsDNS1123Label(r.SecretRef) {
				add(at+".secretRef", "%q: %s", r.SecretRef, e)
			}
		}
		out.Receivers = append(out.Receivers, r)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return out, nil
}

func secretRefOf(m map[string]any) string {
	for _, k := range []string{"secretRef", "name"} {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return "<receiver>"
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func eventList() string {
	s := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
