package api

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ValidateNodeName says why name cannot name a node, or nil. A node name
// must be a DNS-1123 subdomain (what Kubernetes requires of a Node: lower
// case, digits, '-' and '.') and make a valid Git ref as the last
// component of its report branch (stoker/reports/<node>), so "my node",
// "../evil" and "a/b" are refused before anything is pushed.
func ValidateNodeName(name string) error {
	if name == "" {
		return errors.New("node name is empty")
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("node name %q is not a DNS-1123 subdomain: %s", name, strings.Join(errs, "; "))
	}
	if err := plumbing.NewBranchReferenceName(ReportsBranch(name)).Validate(); err != nil {
		return fmt.Errorf("node name %q does not make a valid Git branch %s: %w", name, ReportsBranch(name), err)
	}
	return nil
}

// ValidateLabels returns every problem with labels at once, validated as
// Kubernetes validates a Node's labels: keys are qualified names
// (optionally prefixed by a DNS subdomain and '/'), values are at most 63
// characters of alphanumerics, '-', '_' and '.' (or empty).
func ValidateLabels(labels map[string]string) error {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("label key %q: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(labels[k]) {
			errs = append(errs, fmt.Errorf("label %s value %q: %s", k, labels[k], msg))
		}
	}
	return errors.Join(errs...)
}
