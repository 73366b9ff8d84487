// Package generate turns the OpenShift kinds that MCO's controllers expand
// into MachineConfigs — KubeletConfig, ContainerRuntimeConfig,
// ImageDigestMirrorSet, ImageTagMirrorSet, ImageContentSourcePolicy and
// the Image named cluster — into generated MachineConfigs per pool, named
// as MCO names them (99-<pool>-generated-registries, -containerruntime,
// -kubelet, then -1, -2 …), each starting from the base files the repo's
// own MachineConfigs give the pool (registries.conf, policy.json,
// storage.conf, kubelet.conf). It also translates Butane files (butane.go)
// into MachineConfig manifests, materialising their local files from the
// repo tree into a private temporary directory.
//
// It is pure apart from that temporary directory: it reads values and an
// fs.FS and returns values. It must not import gitsource, net/http, agent,
// nodeops or any reconciler package (the render package calls it).
package generate
