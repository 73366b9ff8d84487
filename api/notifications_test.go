package api

import (
	"strings"
	"testing"
)

func TestParseNotifications(t *testing.T) {
	const file = ".stoker/notifications.yaml"
	tests := []struct {
		name string
		data string
		want []string // "field: message part", in order; none = valid
	}{
		{name: "valid", data: `receivers:
  - name: ops
    type: webhook
    events: [RolloutStarted, NodeDegraded]
    pools: [worker]
    secretRef: ops-hook
  - name: chat
    type: slack
`},
		{name: "url in git", data: "receivers:\n  - name: chat\n    type: slack\n    url: https://hooks.example/T000/B000/XXXX\n",
			want: []string{"receivers[0].url: a receiver's URL and secrets never come from Git: put them in the hub's --notify-secrets-dir, as <dir>/chat/"}},
		{name: "token in git", data: "receivers:\n  - name: ops\n    type: webhook\n    secretRef: s\n    token: abc\n",
			want: []string{"receivers[0].token: a receiver's URL and secrets never come from Git", "<dir>/s/"}},
		{name: "unknown fields", data: "receiver: []\nreceivers:\n  - name: ops\n    type: webhook\n    event: [x]\n",
			want: []string{"receiver: unknown field", "receivers[0].event: unknown field"}},
		{name: "bad values", data: `receivers:
  - name: Ops_1
    type: email
    events: [RolloutBegun]
    pools: ["a b"]
  - name: ok
    type: slack
  - name: ok
    type: slack
`, want: []string{"receivers[0].name: \"Ops_1\"", "receivers[0].type: \"email\" is not one of webhook, slack",
			"receivers[0].events[0]: \"RolloutBegun\" is not one of RolloutStarted", "receivers[0].pools[0]: \"a b\"", "receivers[2].name: \"ok\" names a receiver twice"}},
		{name: "not yaml", data: "receivers: [", want: []string{"does not parse"}},
		{name: "too big", data: "receivers: []\n" + strings.Repeat("#", MaxNotificationsSize), want: []string{"more than 65536"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ps := ParseNotifications(file, []byte(tc.data))
			if len(tc.want) == 0 {
				if len(ps) > 0 || n == nil || len(n.Receivers) != 2 || n.Receivers[0].Secret() != "ops-hook" || n.Receivers[1].Secret() != "chat" {
					t.Fatalf("ParseNotifications = %+v, %v; want 2 receivers", n, ps)
				}
				return
			}
			if n != nil {
				t.Errorf("ParseNotifications returned receivers %+v with problems", n)
			}
			all := ""
			for _, p := range ps {
				if p.File != file || p.Severity != SeverityError {
					t.Errorf("problem %+v: want file %s, severity error", p, file)
				}
				all += p.String() + "\n"
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems\n%s\nlack %q", all, w)
				}
			}
		})
	}
}

func TestReceiverWants(t *testing.T) {
	r := Receiver{Events: []EventType{EventNodeDegraded}, Pools: []string{"infra"}}
	if !r.Wants(EventNodeDegraded, []string{"worker", "infra"}) || r.Wants(EventNodeDegraded, []string{"worker"}) || r.Wants(EventRolloutStarted, []string{"infra"}) {
		t.Error("filters do not hold")
	}
	if !(Receiver{}).Wants(EventRenderFailed, nil) {
		t.Error("a receiver without filters wants everything")
	}
}
