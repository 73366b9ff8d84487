package api

import "strings"

// SplitKernelArguments splits kernel argument entries as MCO's daemon does
// before it hands them to rpm-ostree (parseKernelArguments in
// pkg/daemon/update.go, after the kernel's own next_arg): an entry may hold
// several arguments separated by ASCII whitespace (the C locale's isspace),
// a double quote groups whitespace into one argument, a quote cannot be
// escaped, and an unbalanced quote runs to the end of the entry. It never
// fails: what MCO accepts, Stoker accepts.
func SplitKernelArguments(entries []string) []string {
	var out []string
	for _, e := range entries {
		for stop := 0; stop < len(e); {
			start := stop
			for start < len(e) && isCSpace(e[start]) {
				start++
			}
			stop = start
			inQuote := false
			for ; stop < len(e); stop++ {
				if isCSpace(e[stop]) && !inQuote {
					break
				}
				if e[stop] == '"' {
					inQuote = !inQuote
				}
			}
			if start != stop {
				out = append(out, strings.TrimSpace(e[start:stop]))
			}
		}
	}
	return out
}

// isCSpace is isspace(3) in the C and POSIX locales.
func isCSpace(b byte) bool {
	return b == ' ' || b == '\f' || b == '\n' || b == '\r' || b == '\t' || b == '\v'
}

// KernelArgsDiff returns the kernel arguments to append and to delete to
// move a node from one rendered config to another, both split as MCO's
// daemon splits them (SplitKernelArguments). from or to may be nil.
func KernelArgsDiff(from, to *Rendered) (add, remove []string) {
	var f, t []string
	if from != nil {
		f = SplitKernelArguments(from.KernelArguments)
	}
	if to != nil {
		t = SplitKernelArguments(to.KernelArguments)
	}
	return listDiff(f, t)
}

// listDiff compares two lists as multisets: an argument given twice must be
// given twice.
func listDiff(from, to []string) (added, removed []string) {
	count := map[string]int{}
	for _, s := range from {
		count[s]++
	}
	for _, s := range to {
		if count[s] > 0 {
			count[s]--
			continue
		}
		added = append(added, s)
	}
	for _, s := range from {
		if count[s] > 0 {
			count[s]--
			removed = append(removed, s)
		}
	}
	return added, removed
}
