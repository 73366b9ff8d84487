package generate

import (
	"strings"
	"testing"
)

// TestMergeMirrorSets holds mergeMirrorSets to runtime-utils'
// mergedDigestMirrorSets / topoSortRepos: one entry per source sorted by
// source, every set's preference order kept ((B, C) and (A, B) give
// A, B, C), the source itself dropped from the end, sets that only name
// the source ignored, NeverContactSource if any set says so, and
// contradicting orders refused.
func TestMergeMirrorSets(t *testing.T) {
	got, err := mergeMirrorSets([]Mirror{
		{Source: "z.io/x", Mirrors: []string{"b.io/x", "c.io/x"}},
		{Source: "z.io/x", Mirrors: []string{"a.io/x", "b.io/x"}, MirrorSourcePolicy: neverContactSource},
		{Source: "y.io/x", Mirrors: []string{"y.io/x"}},
		{Source: "w.io/x", Mirrors: []string{"m.io/x", "w.io/x", "n.io/x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, m := range got {
		lines = append(lines, m.Source+": "+strings.Join(m.Mirrors, ",")+" "+m.MirrorSourcePolicy)
	}
	want := "w.io/x: m.io/x,w.io/x,n.io/x |z.io/x: a.io/x,b.io/x,c.io/x NeverContactSource"
	if s := strings.Join(lines, "|"); s != want {
		t.Fatalf("got  %q\nwant %q", s, want)
	}
	if _, err := mergeMirrorSets([]Mirror{
		{Source: "z.io/x", Mirrors: []string{"a.io/x", "b.io/x"}},
		{Source: "z.io/x", Mirrors: []string{"b.io/x", "a.io/x"}},
	}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("contradicting orders: %v", err)
	}
}

// TestScopeNested is runtime-utils' ScopeIsNestedInsideScope, which
// EditRegistriesConfig uses to propagate insecure and blocked flags.
func TestScopeNested(t *testing.T) {
	for _, c := range []struct {
		sub, super string
		want       bool
	}{
		{"a.io/ns", "a.io", true},
		{"a.io", "a.io", true},
		{"a.iox", "a.io", false},
		{"x.a.io/ns", "*.a.io", true},
		{"*.x.a.io", "*.a.io", true},
		{"x.a.io:5000", "*.a.io", true},
		{"quay/b.a.io", "*.a.io", false},
		{"b.io", "*.a.io", false},
	} {
		if got := scopeNested(c.sub, c.super); got != c.want {
			t.Errorf("scopeNested(%q, %q) = %v", c.sub, c.super, got)
		}
	}
}
