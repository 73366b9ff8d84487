package render

import "stoker.dev/stoker/test/testutil"

// Shared manifest fixtures (test/testutil), under the short names the
// tests use.
var (
	mc        = testutil.MC
	pool      = testutil.Pool
	writeTree = testutil.WriteTree
)

const workerInfraSel = testutil.WorkerInfraSel
