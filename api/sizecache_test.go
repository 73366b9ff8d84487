package api

import (
	"testing"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
)

// TestSizeCacheByCompression: a size is found again only for the source
// and compression it was recorded with (none and "" are one), and sizes
// under compressions other than gzip are never recorded.
func TestSizeCacheByCompression(t *testing.T) {
	src := "data:,x"
	res := func(comp *string) ign3types.Resource { return ign3types.Resource{Source: &src, Compression: comp} }
	empty, gzip, zstd := "", "gzip", "zstd"
	c := SizeCache{}
	c.put(res(&gzip), 12345)
	if n, ok := c.get(res(&gzip)); !ok || n != 12345 {
		t.Errorf("gzip: got %d, %v; want 12345, true", n, ok)
	}
	for name, comp := range map[string]*string{"none": nil, "empty": &empty, "zstd": &zstd} {
		if n, ok := c.get(res(comp)); ok {
			t.Errorf("%s after a gzip size: got %d, true; want a miss", name, n)
		}
	}
	c.put(res(nil), 7)
	if n, ok := c.get(res(&empty)); !ok || n != 7 {
		t.Errorf(`"" after none: got %d, %v; want 7, true`, n, ok)
	}
	other := "data:,x"
	if _, ok := c.get(ign3types.Resource{Source: &other}); ok {
		t.Error("another source with the same text: found; want a miss (keyed by the source pointer)")
	}
	c = SizeCache{}
	c.put(res(&zstd), 3)
	if len(c) != 0 {
		t.Errorf("zstd recorded: %v", c)
	}
	var none SizeCache
	none.put(res(nil), 1)
	if _, ok := none.get(res(nil)); ok {
		t.Error("the zero SizeCache remembered a size")
	}
}
