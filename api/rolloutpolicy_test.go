package api

import (
	"strings"
	"testing"
)

func TestParseRolloutPolicy(t *testing.T) {
	p, ps := ParseRolloutPolicy([]byte("holds:\n- node: w-1\n  reason: disk swap\norder:\n  label: example.com/wave\n  values: [canary, \"1\"]\n"))
	if len(ps) > 0 || p == nil {
		t.Fatalf("valid file: %v", ps)
	}
	if h, ok := p.Held("w-1"); !ok || h.Reason != "disk swap" {
		t.Errorf("Held(w-1) = %v, %v", h, ok)
	}
	if _, ok := p.Held("w-2"); ok {
		t.Error("w-2 held")
	}
	if p, ps := ParseRolloutPolicy([]byte("# nothing yet\n")); p != nil || ps != nil {
		t.Errorf("empty file: %v %v", p, ps)
	}
	for _, tc := range []struct{ name, yaml, field, msg string }{
		{"unknown key", "hold:\n- node: a\n", "", `unknown field "hold"`},
		{"bad node", "holds:\n- node: My_Node\n", "holds[0].node", "DNS-1123"},
		{"held twice", "holds:\n- node: a\n- node: a\n", "holds[1].node", "twice"},
		{"both orders", "order:\n  nodes: [a]\n  label: x\n", "order", "not both"},
		{"empty order", "order: {}\n", "order", "set nodes"},
		{"values without label", "order:\n  nodes: [a]\n  values: [x]\n", "order.values", "needs order.label"},
		{"bad label", "order:\n  label: \"bad key!\"\n", "order.label", "bad key!"},
		{"bad value", "order:\n  label: x\n  values: [\"no spaces\"]\n", "order.values[0]", "no spaces"},
		{"listed twice", "order:\n  nodes: [a, b, a]\n", "order.nodes[2]", "twice"},
		{"not yaml", "holds: [\n", "", "not YAML"},
		{"wrong type", "holds: yes\n", "", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ps := ParseRolloutPolicy([]byte(tc.yaml))
			if p != nil || len(ps) == 0 {
				t.Fatalf("got %v, %v; want a problem", p, ps)
			}
			if ps[0].File != RolloutPolicyFile || ps[0].Field != tc.field || !strings.Contains(ps[0].Message, tc.msg) {
				t.Errorf("problem %+v, want field %q and %q", ps[0], tc.field, tc.msg)
			}
		})
	}
	p, _ = ParseRolloutPolicy([]byte("holds:\n- node: ghost\norder:\n  nodes: [a, ghost2]\n"))
	w := p.UnknownNodes(func(n string) bool { return n == "a" })
	if len(w) != 2 || w[0].Severity != SeverityWarning || w[0].Field != "holds[0].node" || w[1].Field != "order.nodes[1]" {
		t.Errorf("UnknownNodes = %v", w)
	}
}
