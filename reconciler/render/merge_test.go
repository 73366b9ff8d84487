package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/coreos/ignition/v2/config/merge"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

	"stoker.dev/stoker/api"
)

// sequentialFold is MCO's MergeMachineConfigs fold, literally: Ignition's
// merge of the result so far with each config in turn, the compression of
// files given new contents reset first.
func sequentialFold(cfgs []ign3types.Config) ign3types.Config {
	out := emptyIgnition()
	for _, c := range cfgs {
		c.Storage.Files = append([]ign3types.File(nil), c.Storage.Files...)
		for i := range c.Storage.Files {
			if f := &c.Storage.Files[i]; f.Contents.Source != nil && f.Contents.Compression == nil {
				f.Contents.Compression = new(string)
			}
		}
		merged, _ := merge.MergeStructTranscribe(out, c)
		out = merged.(ign3types.Config)
	}
	for i := range out.Storage.Files {
		if c := out.Storage.Files[i].Contents.Compression; c != nil && *c == "" {
			out.Storage.Files[i].Contents.Compression = nil
		}
	}
	out.Ignition.Version = emptyIgnition().Ignition.Version
	return out
}

func assertSameFold(t *testing.T, what string, cfgs []ign3types.Config) {
	t.Helper()
	a, _ := json.Marshal(sequentialFold(cfgs))
	held := make([]Ignition, len(cfgs))
	ptrs := make([]*Ignition, len(cfgs))
	for i := range cfgs {
		held[i] = NewIgnition(cfgs[i])
		if back := held[i].Config(); !reflect.DeepEqual(back, cfgs[i]) {
			t.Fatalf("%s: config %d held as a Repo does comes back different:\nheld %+v\nback %+v", what, i, cfgs[i], back)
		}
		ptrs[i] = &held[i]
	}
	b, _ := json.Marshal(foldIgnition(ptrs))
	if !bytes.Equal(a, b) {
		t.Fatalf("%s: keyed fold differs from Ignition's sequential merge:\nsequential %s\nkeyed      %s", what, a, b)
	}
}

// TestFoldMatchesSequentialMerge pins foldIgnition to the sequential fold
// of MCO's MergeMachineConfigs on the corpus, on every conformance case and
// on random configs whose paths collide and move between files,
// directories and links.
func TestFoldMatchesSequentialMerge(t *testing.T) {
	var cfgs []ign3types.Config
	var names []string
	byName := map[string]ign3types.Config{}
	for name, data := range corpusFiles(t, "valid") {
		repo, _ := LoadBytes(name, data, LoadOptions{})
		for _, mc := range repo.MachineConfigs {
			byName[mc.Object.Name] = mc.Object.Ignition.Config()
			names = append(names, mc.Object.Name)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		cfgs = append(cfgs, byName[n])
	}
	for n := 0; n <= len(cfgs); n++ {
		assertSameFold(t, fmt.Sprintf("first %d corpus configs", n), cfgs[:n])
	}

	// Every render case of the conformance data, in MCO's order.
	if root := conformanceDir(t); root != "" {
		ents, _ := os.ReadDir(filepath.Join(root, "cases"))
		for _, e := range ents {
			repo, ps := Load(os.DirFS(filepath.Join(root, "cases", e.Name())), ".", LoadOptions{})
			if ps.Err() != nil {
				continue
			}
			for _, pool := range repo.Pools {
				sel, _ := SelectMachineConfigs(pool.Object, repo.MachineConfigs)
				var list []ign3types.Config
				for _, s := range sel {
					list = append(list, s.Object.Ignition.Config())
				}
				assertSameFold(t, e.Name()+"/"+pool.Object.Name, list)
			}
		}
	}

	rng := rand.New(rand.NewSource(14))
	for round := 0; round < 2000; round++ {
		list := make([]ign3types.Config, 1+rng.Intn(6))
		for i := range list {
			list[i] = randomConfig(rng)
		}
		assertSameFold(t, fmt.Sprintf("random round %d", round), list)
	}
}

func randomConfig(rng *rand.Rand) ign3types.Config {
	c := emptyIgnition()
	str := func(s string) *string { return &s }
	used := map[string]bool{}
	for n := rng.Intn(5); n > 0; n-- {
		p := fmt.Sprintf("/etc/p%d", rng.Intn(4))
		if used[p] {
			continue
		}
		used[p] = true
		switch rng.Intn(3) {
		case 0:
			f := ign3types.File{Node: ign3types.Node{Path: p}}
			if rng.Intn(3) > 0 {
				f.Contents.Source = str(fmt.Sprintf("data:,%d", rng.Intn(3)))
			}
			if rng.Intn(3) == 0 {
				f.Contents.Compression = str("gzip")
			}
			if rng.Intn(2) == 0 {
				m := 0o600 + rng.Intn(3)
				f.Mode = &m
			}
			if rng.Intn(3) == 0 {
				b := rng.Intn(2) == 0
				f.Overwrite = &b
			}
			c.Storage.Files = append(c.Storage.Files, f)
		case 1:
			d := ign3types.Directory{Node: ign3types.Node{Path: p}}
			if rng.Intn(2) == 0 {
				m := 0o700 + rng.Intn(3)
				d.Mode = &m
			}
			c.Storage.Directories = append(c.Storage.Directories, d)
		default:
			l := ign3types.Link{Node: ign3types.Node{Path: p}}
			l.Target = str(fmt.Sprintf("/etc/t%d", rng.Intn(3)))
			c.Storage.Links = append(c.Storage.Links, l)
		}
	}
	seenUnit := map[string]bool{}
	for n := rng.Intn(3); n > 0; n-- {
		name := fmt.Sprintf("u%d.service", rng.Intn(3))
		if seenUnit[name] {
			continue
		}
		seenUnit[name] = true
		u := ign3types.Unit{Name: name}
		if rng.Intn(2) == 0 {
			u.Contents = str(fmt.Sprintf("[Unit]\n# %d\n", rng.Intn(3)))
		}
		if rng.Intn(2) == 0 {
			b := rng.Intn(2) == 0
			u.Enabled = &b
		}
		if rng.Intn(2) == 0 {
			u.Dropins = []ign3types.Dropin{{Name: fmt.Sprintf("d%d.conf", rng.Intn(2)), Contents: str("x")}}
		}
		c.Systemd.Units = append(c.Systemd.Units, u)
	}
	if rng.Intn(4) == 0 {
		c.Passwd.Users = []ign3types.PasswdUser{{Name: "core", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{ign3types.SSHAuthorizedKey(fmt.Sprintf("k%d", rng.Intn(3)))}}}
	}
	if rng.Intn(6) == 0 {
		c.KernelArguments.ShouldExist = []ign3types.KernelArgument{ign3types.KernelArgument(fmt.Sprintf("a%d", rng.Intn(2)))}
	}
	return c
}

// TestRestIsEmpty: restIsEmpty must see every field Ignition's Config has
// besides files, directories, links and units; a new spec's field fails
// here until restIsEmpty checks it.
func TestRestIsEmpty(t *testing.T) {
	var walk func(v reflect.Value, path string)
	count := 0
	walk = func(v reflect.Value, path string) {
		switch path {
		case ".Ignition.Version", ".Storage.Files", ".Storage.Directories", ".Storage.Links", ".Systemd.Units":
			return
		}
		if v.Kind() == reflect.Struct {
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		}
		count++
		c := emptyIgnition()
		c.Ignition.Version = ""
		f := reflect.ValueOf(&c).Elem()
		for _, name := range splitPath(path) {
			f = f.FieldByName(name)
		}
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("%s: unexpected kind %s", path, f.Kind())
		}
		if restIsEmpty(c) {
			t.Errorf("restIsEmpty misses %s", path)
		}
	}
	walk(reflect.ValueOf(ign3types.Config{}), "")
	if count < 10 {
		t.Fatalf("walked only %d fields", count)
	}
}

func splitPath(p string) []string {
	var out []string
	cur := ""
	for _, r := range p[1:] {
		if r == '.' {
			out = append(out, cur)
			cur = ""
			continue
		}
		cur += string(r)
	}
	return append(out, cur)
}

// TestNameAndSizeFromPieces: the name hashed in pieces and the size
// measured with a stand-in are those of the whole encodings.
func TestNameAndSizeFromPieces(t *testing.T) {
	for round, r := range []*api.Rendered{
		{Config: emptyIgnition()},
		{Config: randomConfig(rand.New(rand.NewSource(1))), KernelArguments: []string{"a=<&>"}, KernelType: "realtime", Extensions: []string{"usbguard"}, FIPS: true, OSImageURL: "q"},
	} {
		canon := *r
		data, _ := json.Marshal(canon)
		sum := sha256.Sum256(data)
		want := "rendered-p-" + hex.EncodeToString(sum[:])[:hashLen]
		if got, err := Name("p", r); err != nil || got != want {
			t.Errorf("round %d: name %s, want %s (%v)", round, got, want, err)
		}
		r.Name = want
		mc, _ := r.MachineConfig()
		whole, _ := json.Marshal(mc)
		cfg, _ := json.Marshal(r.Config)
		if _, size := api.ValidateMerged(r, cfg, api.DefaultValidationOptions()); size != len(whole) {
			t.Errorf("round %d: size %d, want %d", round, size, len(whole))
		}
	}
}
