// Package render turns a config repo's files into one rendered config per
// pool with MCO's semantics: it loads and dispatches every YAML document by
// apiVersion/kind (load.go, kinds.go, objects.go), parses and normalises
// Ignition (ignition.go), validates with file and field paths, merges a
// pool's MachineConfigs and names the result rendered-<pool>-<hash>
// (render.go), and runs `stoker validate` and `stoker render`
// (commands.go). It is used by the hub, `stoker diff` and the commands.
//
// It is pure: it reads an fs.FS and returns values. It must not import
// gitsource, net/http, agent, nodeops or any other reconciler package.
package render
