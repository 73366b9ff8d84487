// Package testutil holds the fixtures that tests of several packages share:
// config-repo manifests (MachineConfigs, pools) as YAML strings and a
// helper that writes a file tree under t.TempDir(). Only tests import it.
//
// It imports no other package of ours, so any package's internal tests may
// use it without an import cycle.
package testutil
