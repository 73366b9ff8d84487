package api

import (
	"encoding/base64"
	"strings"
	"sync"

	"github.com/vincent-petithory/dataurl"
)

// decodeDataURL returns what dataurl.DecodeString(src) decodes, data and
// error alike, for the size checks, which decode every file of every
// MachineConfig. dataurl lexes in a goroutine of its own, one per call,
// handing each token over a channel: on a repo's worth of files that
// scheduling costs more than the decoding. So the common form, a base64
// payload after a header without quotes, is split here at its comma (the
// first: no other comma can stand in such a header) and decoded as dataurl
// decodes it, with base64.StdEncoding (which takes what dataurl's lexer
// takes in a base64 payload, and a carriage return, left to dataurl); the
// header is still judged by dataurl (on the header alone, with an empty
// payload, which it lexes exactly as it lexes the header of src),
// remembering its verdict for a few headers. Anything else, and every
// payload base64 refuses, goes to dataurl itself, for its own error.
// TestDecodeDataURLMatchesDataurl and FuzzDecodeDataURL hold the two to
// the same results.
func decodeDataURL(src string) ([]byte, error) {
	const prefix = "data:"
	if !strings.HasPrefix(src, prefix) {
		return decodeWithDataurl(src)
	}
	header, payload, ok := strings.Cut(src[len(prefix):], ",")
	if !ok || !strings.HasSuffix(header, ";base64") || strings.ContainsRune(header, '"') || strings.IndexByte(payload, '\r') >= 0 {
		return decodeWithDataurl(src)
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return decodeWithDataurl(src)
	}
	if err := headerError(header); err != nil {
		return nil, err
	}
	return data, nil
}

func decodeWithDataurl(src string) ([]byte, error) {
	du, err := dataurl.DecodeString(src)
	if err != nil {
		return nil, err
	}
	return du.Data, nil
}

// maxHeaderVerdicts bounds the headers remembered: real configs carry a
// handful ("text/plain;charset=utf-8;base64", ";base64"); past the bound a
// header is judged every time.
const maxHeaderVerdicts = 64

var headerVerdicts struct {
	sync.Mutex
	m map[string]error
}

// headerError is dataurl's verdict on a data URL with this header and an
// empty payload.
func headerError(header string) error {
	headerVerdicts.Lock()
	err, ok := headerVerdicts.m[header]
	headerVerdicts.Unlock()
	if ok {
		return err
	}
	_, err = dataurl.DecodeString("data:" + header + ",")
	headerVerdicts.Lock()
	if headerVerdicts.m == nil {
		headerVerdicts.m = map[string]error{}
	}
	if len(headerVerdicts.m) < maxHeaderVerdicts {
		headerVerdicts.m[header] = err
	}
	headerVerdicts.Unlock()
	return err
}
