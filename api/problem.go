package api

import (
	"fmt"
	"strings"
)

// Severity of a Problem.
type Severity string

// Severities: errors stop a render, warnings do not (unless --strict).
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one finding of validation, with the file and the field path
// it is about, so people can fix it without guessing.
type Problem struct {
	File string `json:"file,omitempty"`
	// Line is the line of Field in File (1-based), when it could be found.
	Line     int      `json:"line,omitempty"`
	Field    string   `json:"field,omitempty"`
	Message  string   `json:"message"`
	Severity Severity `json:"severity,omitempty"`
	// Commit is the source commit, when the problem came from Git.
	Commit string `json:"commit,omitempty"`
}

// String renders "file: field: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is a list of problems; it is an error when it holds any error.
type Problems []Problem

// Errors returns only the problems that are errors.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity != SeverityWarning {
			out = append(out, p)
		}
	}
	return out
}

// Warnings returns only the warnings.
func (ps Problems) Warnings() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == SeverityWarning {
			out = append(out, p)
		}
	}
	return out
}

// Err returns nil when ps holds no errors, else an error listing them all.
func (ps Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	return ProblemsError(errs)
}

// ProblemsError is the error form of a list of problems.
type ProblemsError Problems

func (e ProblemsError) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s):\n%s", len(e), strings.Join(lines, "\n"))
}
