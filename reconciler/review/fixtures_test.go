package review

import (
	"flag"

	"stoker.dev/stoker/test/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// Shared manifest fixtures (test/testutil), under the short names the
// tests use.
var (
	mc         = testutil.MC
	pool       = testutil.Pool
	workerPool = testutil.WorkerPool
	fileMC     = testutil.FileMC
	writeTree  = testutil.WriteTree
)

const workerInfraSel = testutil.WorkerInfraSel
