package api

import (
	"bytes"
	"encoding/base64"
	"math/rand"
	"testing"

	"github.com/vincent-petithory/dataurl"
)

// dataURLCases are data URLs of every form the fast path takes, declines
// or must refuse as dataurl refuses it.
var dataURLCases = []string{
	"", "data:", "data:,", "data:;base64,", "data:;base64,QUJD", "data:;base64,QUJ", "data:;base64,QU==",
	"data:text/plain;charset=utf-8;base64,aGVsbG8K", "data:text/plain;base64,aGVs\nbG8K", "data:text/plain;base64,aGVs\rbG8K",
	"data:text/plain;base64,aGVs bG8K", "data:text/plain;base64,aGVsbG8K,", "data:text/plain;base64,aGVs%20bG8K",
	"DATA:;base64,QUJD", "data:TEXT/PLAIN;BASE64,QUJD", "data:text/plain;Base64,QUJD", "data:text/plain;x=base64,QUJD",
	"data:text/plain;;base64,QUJD", "data:text/;base64,QUJD", "data:/plain;base64,QUJD", "data:bogus/plain;base64,QUJD",
	"data:x-foo/bar;base64,QUJD", "data:text/plain;a=%zz;base64,QUJD", "data:text/plain;a=%41;base64,QUJD",
	"data:text/plain;a=\"x,y\";base64,QUJD", "data:text/plain;a=\"x\";base64,QUJD", "data:text/pl ain;base64,QUJD",
	"data:text/plain;base64", "data:text/plain;base64;,QUJD", "data:;base64,====", "data:;base64,QUJDRA", "data:;base64,Q",
	"data:,hello%20world", "data:text/plain,hi", "data:;charset=utf-8;base64,QUJD", "data:text/plain;charset=utf-8;base64,\n",
	"data:application/octet-stream;base64,H4sIAAAAAAAA/0pMSgYEAAD//wMAQhY1qgMAAAA=", "data:text/plain;base64,QUJD\u00e9",
}

func sameAsDataurl(t *testing.T, src string) {
	t.Helper()
	got, gotErr := decodeDataURL(src)
	du, wantErr := dataurl.DecodeString(src)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%q: decodeDataURL error %v, dataurl error %v", src, gotErr, wantErr)
	case wantErr != nil && gotErr.Error() != wantErr.Error():
		t.Fatalf("%q: decodeDataURL error %q, dataurl error %q", src, gotErr, wantErr)
	case wantErr == nil && !bytes.Equal(got, du.Data):
		t.Fatalf("%q: decodeDataURL %q, dataurl %q", src, got, du.Data)
	}
}

// TestDecodeDataURLMatchesDataurl holds decodeDataURL to
// dataurl.DecodeString, data and error message alike, on the cases above
// and on random edits of them and of real-sized payloads (the headers'
// verdicts are remembered, so each header is judged fresh and cached).
func TestDecodeDataURLMatchesDataurl(t *testing.T) {
	for _, c := range dataURLCases {
		sameAsDataurl(t, c)
		sameAsDataurl(t, c) // from the remembered verdict
	}
	rng := rand.New(rand.NewSource(14))
	alphabet := []byte("data:;,base64/+=\n\r%\"ABCxyz09 \u00e9")
	payload := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("setting = value\n"), 300))
	seeds := append(dataURLCases, "data:text/plain;charset=utf-8;base64,"+payload, "data:;base64,"+payload)
	for i := 0; i < 20000; i++ {
		b := []byte(seeds[rng.Intn(len(seeds))])
		for n := rng.Intn(3); n >= 0 && len(b) > 0; n-- {
			switch p := rng.Intn(len(b)); rng.Intn(3) {
			case 0:
				b[p] = alphabet[rng.Intn(len(alphabet))]
			case 1:
				b = append(b[:p], b[p+1:]...)
			default:
				b = append(b[:p], append([]byte{alphabet[rng.Intn(len(alphabet))]}, b[p:]...)...)
			}
		}
		sameAsDataurl(t, string(b))
	}
}

func FuzzDecodeDataURL(f *testing.F) {
	for _, c := range dataURLCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, src string) { sameAsDataurl(t, src) })
}
