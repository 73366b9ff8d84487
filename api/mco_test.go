package api

import (
	"reflect"
	"strings"
	"testing"
)

// TestSplitKernelArguments follows MCO's parseKernelArguments /
// splitKernelArguments (pkg/daemon/update.go): ASCII whitespace only,
// double quotes group, an unbalanced quote runs to the end.
func TestSplitKernelArguments(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"one per entry", []string{"a=1", "b"}, []string{"a=1", "b"}},
		{"several in one entry", []string{" enforcing=0  x=1\n"}, []string{"enforcing=0", "x=1"}},
		{"quotes group", []string{`dyndbg="file x.c +p" quiet`}, []string{`dyndbg="file x.c +p"`, "quiet"}},
		{"unbalanced quote runs to the end", []string{`foo="bar baz`}, []string{`foo="bar baz`}},
		{"non-ASCII space is not a separator", []string{"a=1\u00a0b=2"}, []string{"a=1\u00a0b=2"}},
		{"vertical tab and form feed separate", []string{"a\vb\fc"}, []string{"a", "b", "c"}},
		{"duplicates kept", []string{"a=1", "a=1"}, []string{"a=1", "a=1"}},
		{"empty entries vanish", []string{"", "  "}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SplitKernelArguments(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMergeClusterPolicies follows apihelpers.MergeClusterPolicies.
func TestMergeClusterPolicies(t *testing.T) {
	def := DefaultNodeDisruptionPolicy()
	none := []Action{{Type: ActionNone}}
	tests := []struct {
		name      string
		user      *NodeDisruptionPolicy
		wantFiles int
		check     func(t *testing.T, m NodeDisruptionPolicy)
	}{
		{"no repo policy: the defaults", nil, len(def.Files), func(t *testing.T, m NodeDisruptionPolicy) {
			if !reflect.DeepEqual(m.SSHKey.Actions, none) {
				t.Errorf("sshkey = %v, want None", m.SSHKey.Actions)
			}
		}},
		{"same path replaces in place", &NodeDisruptionPolicy{Files: []FilePolicy{{Path: ContainerRegistryConfPath, Actions: none}}}, len(def.Files), func(t *testing.T, m NodeDisruptionPolicy) {
			for i, f := range m.Files {
				if f.Path == ContainerRegistryConfPath && (i != 3 || !reflect.DeepEqual(f.Actions, none)) {
					t.Errorf("registries.conf at %d with %v", i, f.Actions)
				}
			}
		}},
		{"a cleaned-equal path does not replace (exact match only)", &NodeDisruptionPolicy{Files: []FilePolicy{{Path: crioPoliciesDir + "/", Actions: none}}}, len(def.Files) + 1, nil},
		{"new paths are appended", &NodeDisruptionPolicy{Files: []FilePolicy{{Path: "/etc/a", Actions: none}, {Path: "/etc/b", Actions: none}}}, len(def.Files) + 2, func(t *testing.T, m NodeDisruptionPolicy) {
			if m.Files[len(m.Files)-1].Path != "/etc/b" {
				t.Errorf("last = %s", m.Files[len(m.Files)-1].Path)
			}
		}},
		{"sshkey replaced only when it has actions", &NodeDisruptionPolicy{SSHKey: &SSHKeyPolicy{}}, len(def.Files), func(t *testing.T, m NodeDisruptionPolicy) {
			if !reflect.DeepEqual(m.SSHKey.Actions, none) {
				t.Errorf("sshkey = %v", m.SSHKey.Actions)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := MergeClusterPolicies(tc.user)
			if len(m.Files) != tc.wantFiles {
				t.Errorf("%d file policies, want %d", len(m.Files), tc.wantFiles)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

// TestSafeRegistriesChange follows isSafeContainerRegistryConfChanges in
// MCO's pkg/daemon/drain.go.
func TestSafeRegistriesChange(t *testing.T) {
	const usr = "unqualified-search-registries = [\"a\", \"b\"]\n"
	const reg = "[[registry]]\nlocation = \"docker.io\"\n"
	const mir = "[[registry.mirror]]\nlocation = \"m1\"\npull-from-mirror = \"digest-only\"\n"
	tests := []struct {
		name     string
		old, new string
		safe     bool
	}{
		{"unchanged", usr, usr, true},
		{"search registry appended", usr, "unqualified-search-registries = [\"a\", \"b\", \"c\"]\n", true},
		{"search registry removed", usr, "unqualified-search-registries = [\"a\"]\n", false},
		{"search registries reordered", usr, "unqualified-search-registries = [\"b\", \"a\"]\n", false},
		{"registry added with digest-only mirror", usr, usr + reg + mir, true},
		{"registry added with mirror-by-digest-only", usr, usr + reg + "mirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m1\"\n", true},
		{"registry added pulling tags from its mirror", usr, usr + reg + "[[registry.mirror]]\nlocation = \"m1\"\n", false},
		{"registry added without mirrors", usr, usr + reg, false},
		{"registry removed", usr + reg + mir, usr, false},
		{"digest-only mirror added", usr + reg + mir, usr + reg + mir + "[[registry.mirror]]\nlocation = \"m2\"\npull-from-mirror = \"digest-only\"\n", true},
		{"tag mirror added", usr + reg + mir, usr + reg + mir + "[[registry.mirror]]\nlocation = \"m2\"\n", false},
		{"mirror removed", usr + reg + mir, usr + reg, false},
		{"registry blocked", usr + reg + mir, usr + reg + "blocked = true\n" + mir, false},
		{"not TOML", usr, "[[[", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			safe, _ := SafeRegistriesChange([]byte(tc.old), []byte(tc.new))
			if safe != tc.safe {
				t.Errorf("safe = %t, want %t", safe, tc.safe)
			}
		})
	}
}

// TestValidateExtensions follows ctrlcommon.ValidateMachineConfigExtensions
// and MergeMachineConfigs' kernel-devel check.
func TestValidateExtensions(t *testing.T) {
	tests := []struct {
		name   string
		exts   []string
		kernel string
		want   string
	}{
		{"supported", []string{"usbguard", "kernel-devel"}, "", ""},
		{"unknown", []string{"usbguard", "not-an-extension"}, "", "invalid extensions found: [not-an-extension]"},
		{"kernel-devel with realtime", []string{"kernel-devel"}, KernelTypeRealtime, "installing kernel-devel extension is not supported with kernelType: realtime"},
		{"kernel-devel with 64k-pages", []string{"kernel-devel"}, KernelType64kPages, "not supported with kernelType: 64k-pages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if ps := ValidateExtensions(tc.exts, "spec.extensions"); len(ps) > 0 {
				got = ps[0].Message
			}
			if err := ValidateMergedKernel(tc.kernel, tc.exts); err != nil {
				got = err.Error()
			}
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
