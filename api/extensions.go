package api

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// SupportedExtensions are the RHCOS extensions MCO installs, each with the
// packages it stands for (ctrlcommon.SupportedExtensions, as MCO's own
// extension tests list them). Any other name is refused, as
// ValidateMachineConfigExtensions refuses it.
var SupportedExtensions = map[string][]string{
	"ipsec":                {"NetworkManager-libreswan", "libreswan"},
	"usbguard":             {"usbguard"},
	"kerberos":             {"krb5-workstation", "libkadm5"},
	"kernel-devel":         {"kernel-devel", "kernel-headers"},
	"sandboxed-containers": {"kata-containers"},
	"sysstat":              {"sysstat"},
}

// ValidateExtensions refuses extension names MCO does not support, all in
// one problem as MCO reports them ("invalid extensions found: [...]"), at
// field (e.g. "spec.extensions").
func ValidateExtensions(exts []string, field string) Problems {
	var ps Problems
	var invalid []string
	for i, e := range exts {
		switch {
		case strings.TrimSpace(e) == "":
			problemf(&ps, field+"["+strconv.Itoa(i)+"]", "empty extension name")
		case SupportedExtensions[e] == nil:
			invalid = append(invalid, e)
		}
	}
	if len(invalid) > 0 {
		supported := make([]string, 0, len(SupportedExtensions))
		for k := range SupportedExtensions {
			supported = append(supported, k)
		}
		sort.Strings(supported)
		problemf(&ps, field, "invalid extensions found: %v (supported: %s)", invalid, strings.Join(supported, ", "))
	}
	return ps
}

// ValidateMergedKernel checks what only the merged config shows, as
// MergeMachineConfigs does: the kernel-devel extension needs the default
// kernel.
func ValidateMergedKernel(kernelType string, exts []string) error {
	if CanonicalKernelType(kernelType) != KernelTypeDefault && slices.Contains(exts, "kernel-devel") {
		return fmt.Errorf("installing kernel-devel extension is not supported with kernelType: %s", kernelType)
	}
	return nil
}
