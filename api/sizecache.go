package api

import ign3types "github.com/coreos/ignition/v2/config/v3_5/types"

// SizeCache maps a checked resource (its source pointer) to the size it
// decodes to under the compression it was checked with. The zero value
// remembers nothing. One entry per source, size and compression packed in
// one word: a repo's cache is held as long as the repo.
type SizeCache map[*string]int64

// sizeCompression codes the compressions a cached size is for (the low
// two bits of an entry); other compressions are never cached.
func sizeCompression(r ign3types.Resource) (int64, bool) {
	switch {
	case r.Compression == nil || *r.Compression == "":
		return 0, true
	case *r.Compression == "gzip":
		return 1, true
	}
	return 0, false
}

func (c SizeCache) put(r ign3types.Resource, n int64) {
	code, ok := sizeCompression(r)
	if c != nil && r.Source != nil && ok && n >= 0 {
		c[r.Source] = n<<2 | code
	}
}

func (c SizeCache) get(r ign3types.Resource) (int64, bool) {
	v, ok := c[r.Source]
	code, known := sizeCompression(r)
	if !ok || !known || v&3 != code {
		return 0, false
	}
	return v >> 2, true
}
