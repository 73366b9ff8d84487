package reconciler

import "stoker.dev/stoker/test/testutil"

// Shared manifest fixtures (test/testutil), under the short names the
// tests use.
var (
	workerPool = testutil.WorkerPool
	fileMC     = testutil.FileMC
	writeTree  = testutil.WriteTree
)
