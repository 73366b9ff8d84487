package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strings"
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

func vsp(s string) *string { return &s }
func vip(i int) *int       { return &i }
func vbp(b bool) *bool     { return &b }

func vfile(path, source string) ign3types.File {
	f := ign3types.File{Node: ign3types.Node{Path: path}}
	if source != "" {
		f.Contents.Source = vsp(source)
	}
	return f
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return "data:;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestValidateIgnition(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(c *ign3types.Config)
		// want lists "field: message substring" of every expected error;
		// none means the config is fine.
		want []string
	}{
		{"empty", func(c *ign3types.Config) {}, nil},
		{"file under /etc", func(c *ign3types.Config) { c.Storage.Files = []ign3types.File{vfile("/etc/a.conf", "data:,x")} }, nil},
		{"every default prefix", func(c *ign3types.Config) {
			for _, p := range DefaultAllowedPrefixes {
				c.Storage.Files = append(c.Storage.Files, vfile(p+"/x", "data:,"))
			}
		}, nil},
		{"gzip data", func(c *ign3types.Config) {
			f := vfile("/etc/a", gz("hello"))
			f.Contents.Compression = vsp("gzip")
			c.Storage.Files = []ign3types.File{f}
		}, nil},
		{"bad gzip", func(c *ign3types.Config) {
			f := vfile("/etc/a", "data:,notgzip")
			f.Contents.Compression = vsp("gzip")
			c.Storage.Files = []ign3types.File{f}
		}, []string{"storage.files[0].contents.source: bad gzip"}},
		{"disks partitions filesystems raid luks", func(c *ign3types.Config) {
			c.Storage.Disks = []ign3types.Disk{{Device: "/dev/sda", Partitions: []ign3types.Partition{{Number: 1}}}}
			c.Storage.Filesystems = []ign3types.Filesystem{{Device: "/dev/sda1"}}
			c.Storage.Raid = []ign3types.Raid{{Name: "md0"}}
			c.Storage.Luks = []ign3types.Luks{{Name: "x"}}
		}, []string{"storage.disks[0]: disks", "storage.disks[0].partitions[0]: partitions", "storage.filesystems[0]: filesystems", "storage.raid[0]: raid", "storage.luks[0]: luks"}},
		{"groups", func(c *ign3types.Config) { c.Passwd.Groups = []ign3types.PasswdGroup{{Name: "g"}} }, []string{"passwd.groups[0]: groups"}},
		{"other user", func(c *ign3types.Config) { c.Passwd.Users = []ign3types.PasswdUser{{Name: "alice"}} }, []string{"passwd.users[0].name: user \"alice\""}},
		{"core keys and password", func(c *ign3types.Config) {
			c.Passwd.Users = []ign3types.PasswdUser{{Name: "core", PasswordHash: vsp("$6$x"), SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"ssh-ed25519 AAA"}}}
		}, nil},
		{"core shell and groups", func(c *ign3types.Config) {
			c.Passwd.Users = []ign3types.PasswdUser{{Name: "core", Shell: vsp("/bin/zsh"), Groups: []ign3types.Group{"wheel"}}}
		}, []string{"passwd.users[0].groups: only", "passwd.users[0].shell: only"}},
		{"append", func(c *ign3types.Config) {
			f := vfile("/etc/a", "data:,x")
			f.Append = []ign3types.Resource{{Source: vsp("data:,y")}}
			c.Storage.Files = []ign3types.File{f}
		}, []string{"storage.files[0].append: append"}},
		{"remote sources", func(c *ign3types.Config) {
			c.Storage.Files = []ign3types.File{vfile("/etc/a", "https://user:pw@example.com/a"), vfile("/etc/b", "s3://bucket/b"), vfile("/etc/c", "tftp://h/c")}
			c.Ignition.Config.Merge = []ign3types.Resource{{Source: vsp("http://example.com/cfg")}}
			c.Ignition.Config.Replace = ign3types.Resource{Source: vsp("https://example.com/cfg")}
		}, []string{"ignition.config.merge[0].source: remote", "ignition.config.replace.source: remote", "storage.files[0].contents.source: remote", "storage.files[1].contents.source: remote", "storage.files[2].contents.source: remote"}},
		{"data merge allowed", func(c *ign3types.Config) {
			c.Ignition.Config.Merge = []ign3types.Resource{{Source: vsp("data:,%7B%7D")}}
		}, nil},
		{"bad data url", func(c *ign3types.Config) { c.Storage.Files = []ign3types.File{vfile("/etc/a", "data:;base64,!!!")} }, []string{"storage.files[0].contents.source: bad data URL"}},
		{"relative path", func(c *ign3types.Config) { c.Storage.Files = []ign3types.File{vfile("etc/a", "")} }, []string{"storage.files[0].path: path \"etc/a\" is not absolute"}},
		{"dotdot", func(c *ign3types.Config) { c.Storage.Files = []ign3types.File{vfile("/etc/../usr/bin/x", "")} }, []string{"storage.files[0].path: path \"/etc/../usr/bin/x\" contains .."}},
		{"unclean", func(c *ign3types.Config) { c.Storage.Files = []ign3types.File{vfile("/etc//a", "")} }, []string{"storage.files[0].path: path \"/etc//a\" is not clean"}},
		{"prefix itself", func(c *ign3types.Config) {
			c.Storage.Directories = []ign3types.Directory{{Node: ign3types.Node{Path: "/etc"}}}
		}, []string{"storage.directories[0].path: path \"/etc\" must be under"}},
		{"forbidden dirs", func(c *ign3types.Config) {
			for _, p := range []string{"/usr/bin/x", "/boot/x", "/bin/x", "/lib64/x", "/proc/x", "/sys/x", "/dev/x", "/etcetera/x"} {
				c.Storage.Files = append(c.Storage.Files, vfile(p, ""))
			}
			c.Storage.Links = []ign3types.Link{{Node: ign3types.Node{Path: "/usr/lib/x"}}}
		}, []string{"files[0].path: path", "files[1].path: path", "files[2].path: path", "files[3].path: path", "files[4].path: path", "files[5].path: path", "files[6].path: path", "files[7].path: path", "links[0].path: path"}},
		{"modes", func(c *ign3types.Config) {
			f := vfile("/etc/a", "")
			f.Mode = vip(0o1000)
			c.Storage.Files = []ign3types.File{f}
			c.Storage.Directories = []ign3types.Directory{{Node: ign3types.Node{Path: "/etc/d"}, DirectoryEmbedded1: ign3types.DirectoryEmbedded1{Mode: vip(0o4755)}}}
		}, []string{"storage.files[0].mode: invalid mode 01000", "storage.directories[0].mode: invalid mode 04755"}},
		{"unit names", func(c *ign3types.Config) {
			c.Systemd.Units = []ign3types.Unit{
				{Name: "../../usr/lib/systemd/system/x.service"},
				{Name: "ok.service", Dropins: []ign3types.Dropin{{Name: "../x.conf"}}},
			}
		}, []string{"systemd.units[0].name: unit name", "systemd.units[1].dropins[0].name: name"}},
		// MCO renders them (r43 of the conformance cases): a warning.
		{"ignition kernel arguments", func(c *ign3types.Config) {
			c.KernelArguments.ShouldExist = []ign3types.KernelArgument{"nosmt"}
		}, []string{"warning: kernelArguments: Ignition kernelArguments"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ign3types.Config{Ignition: ign3types.Ignition{Version: IgnitionVersion}}
			tc.cfg(&cfg)
			ps := ValidateIgnition(cfg, "spec.config", DefaultValidationOptions())
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				wantSev := SeverityError
				if rest, ok := strings.CutPrefix(w, "warning: "); ok {
					w, wantSev = rest, SeverityWarning
				}
				got := ps[i].Field + ": " + ps[i].Message
				if !strings.Contains(got, w) || !strings.HasPrefix(ps[i].Field, "spec.config.") {
					t.Errorf("problem %d = %q, want it to contain %q", i, got, w)
				}
				if ps[i].Severity != wantSev {
					t.Errorf("problem %d severity %q, want %s", i, ps[i].Severity, wantSev)
				}
			}
			if err := ps.Err(); err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("credentials leaked into %v", ps)
			}
		})
	}
}

func TestValidationOptions(t *testing.T) {
	cfg := ign3types.Config{}
	cfg.Storage.Files = []ign3types.File{vfile("/opt/a", ""), vfile("/usr/bin/a", "")}
	cfg.Passwd.Users = []ign3types.PasswdUser{{Name: "admin", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{"k"}}}
	opts := ValidationOptions{AllowedPrefixes: []string{"/opt", "/usr"}, CoreUser: "admin"}
	ps := ValidateIgnition(cfg, "", opts)
	// /usr is never allowed, whatever the options say.
	if len(ps) != 1 || ps[0].Field != "storage.files[1].path" {
		t.Fatalf("got %v, want only storage.files[1].path", ps)
	}
}

func TestValidateKernelType(t *testing.T) {
	for kt, ok := range map[string]bool{"": true, "default": true, "realtime": true, "64k-pages": true, "rt": false, "Realtime": false} {
		if got := len(ValidateKernelType(kt, "spec.kernelType")) == 0; got != ok {
			t.Errorf("ValidateKernelType(%q) ok = %v, want %v", kt, got, ok)
		}
	}
}

func TestValidateRendered(t *testing.T) {
	good := &Rendered{Name: "rendered-worker-1", KernelType: "default", Config: ign3types.Config{Ignition: ign3types.Ignition{Version: IgnitionVersion}}}
	if ps := ValidateRendered(good, DefaultValidationOptions()); len(ps) != 0 {
		t.Fatalf("good config: %v", ps)
	}
	nosrc := vfile("/etc/a", "")
	nosrc.Overwrite = vbp(true)
	cases := []struct {
		name string
		r    *Rendered
		want string
	}{
		{"no name", &Rendered{}, "metadata.name"},
		{"bad kernel type", &Rendered{Name: "x", KernelType: "rt"}, "spec.kernelType"},
		{"ignition validation", &Rendered{Name: "x", Config: ign3types.Config{Storage: ign3types.Storage{Files: []ign3types.File{nosrc}}}}, "spec.config.storage.files[0].overwrite"},
		{"node rule", &Rendered{Name: "x", Config: ign3types.Config{Passwd: ign3types.Passwd{Groups: []ign3types.PasswdGroup{{Name: "g"}}}}}, "spec.config.passwd.groups[0]"},
		{"too big", &Rendered{Name: "x", Config: ign3types.Config{Storage: ign3types.Storage{Files: []ign3types.File{vfile("/etc/big", "data:,"+strings.Repeat("a", MaxRenderedBytes))}}}}, "over the limit"},
		{"wrong version", &Rendered{Name: "x", Config: ign3types.Config{Ignition: ign3types.Ignition{Version: "3.2.0"}}}, "spec.config.ignition.version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := ValidateRendered(tc.r, DefaultValidationOptions())
			if ps.Err() == nil || !strings.Contains(ps.Err().Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", ps, tc.want)
			}
		})
	}
}
