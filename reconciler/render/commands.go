package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/google/renameio/v2"

	"stoker.dev/stoker/api"
)

// ErrInvalid means the repo has validation errors; callers exit 1 on it.
var ErrInvalid = errors.New("config repo has errors")

// ValidateOptions are the inputs of `stoker validate`.
type ValidateOptions struct {
	// Dir is the config repo checkout (default ".").
	Dir string
	// Strict turns warnings into errors.
	Strict bool
	// Output is "text" (default: one "file: field: message" per line and
	// a summary) or "json" (a ValidateReport with each problem's line, for
	// CI annotations).
	Output string
	// Stdout receives the problems and the summary.
	Stdout io.Writer
}

// ValidateReport is `stoker validate -o json`.
type ValidateReport struct {
	Dir      string       `json:"dir"`
	Valid    bool         `json:"valid"`
	Errors   int          `json:"errors"`
	Warnings int          `json:"warnings"`
	Problems api.Problems `json:"problems"`
}

// RunValidate loads and renders Dir, prints every problem one per line
// ("file: field: message") and a one-line summary when clean. It returns an
// error wrapping ErrInvalid when there are errors.
func RunValidate(ctx context.Context, opts ValidateOptions) error {
	_ = ctx
	dir := dirOr(opts.Dir)
	switch opts.Output {
	case "", "text", "json":
	default:
		return fmt.Errorf("unknown output format %q (want text or json)", opts.Output)
	}
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("read %s: not a directory", dir)
	}
	repo, res, ps := loadAndRender(opts.Dir, opts.Strict)
	ps = append(ps, validateNotifications(dir)...)
	_, rps := api.ReadRolloutPolicy(os.DirFS(dir))
	ps = append(ps, rps...)
	AddLines(os.DirFS(dir), ps)
	n := len(ps.Errors())
	if opts.Output == "json" {
		rep := ValidateReport{Dir: dir, Valid: n == 0, Errors: n, Warnings: len(ps.Warnings()), Problems: ps}
		if rep.Problems == nil {
			rep.Problems = api.Problems{}
		}
		enc := json.NewEncoder(opts.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, p := range ps {
			fmt.Fprintln(opts.Stdout, p.String())
		}
	}
	if n > 0 {
		return fmt.Errorf("%s: %d error(s), %d warning(s): %w", dir, n, len(ps.Warnings()), ErrInvalid)
	}
	if opts.Output != "json" {
		fmt.Fprintf(opts.Stdout, "%s: ok: %d MachineConfig(s), %d pool(s) rendered, %d warning(s)\n",
			dir, len(repo.MachineConfigs), len(res.Pools), len(ps.Warnings()))
	}
	return nil
}

func dirOr(d string) string {
	if d == "" {
		return "."
	}
	return d
}

func loadAndRender(dir string, strict bool) (*Repo, *RenderResult, api.Problems) {
	repo, ps := Load(os.DirFS(dirOr(dir)), ".", LoadOptions{Strict: strict})
	// Render what loaded even when something did not, so one run reports
	// every problem: a MachineConfig with errors is left out of the
	// render, the others still show what only the merged config shows
	// (size, kernel-devel with a realtime kernel).
	res, rps := RenderAll(repo, RenderOptions{})
	if strict {
		for i := range rps {
			rps[i].Severity = api.SeverityError
		}
	}
	ps = append(ps, rps...)
	if len(ps.Errors()) > 0 {
		return repo, nil, ps
	}
	return repo, res, ps
}

// RenderCommandOptions are the inputs of `stoker render`.
type RenderCommandOptions struct {
	Dir string
	// Out, when set, receives exactly the files the hub writes to
	// stoker/status for these pools (pools/ and rendered/).
	Out string
	// Output is "table" (default) or "json".
	Output string
	Stdout io.Writer
	// Stderr receives warnings.
	Stderr io.Writer
}

// renderJSON is the -o json contract.
type renderJSON struct {
	Pools []renderJSONPool `json:"pools"`
	// Generated names the MachineConfigs not written as such in the repo
	// (generated from other kinds, or translated from Butane) and their
	// sources.
	Generated []GeneratedSource `json:"generated,omitempty"`
}

type renderJSONPool struct {
	Name           string   `json:"name"`
	Rendered       string   `json:"rendered"`
	MachineConfigs []string `json:"machineConfigs"`
}

// RunRender renders Dir and prints one line per pool, or JSON; with Out it
// writes the status-branch files. It returns an error wrapping ErrInvalid
// (after printing the problems) when the repo has errors.
func RunRender(ctx context.Context, opts RenderCommandOptions) error {
	_ = ctx
	switch opts.Output {
	case "", "table", "json":
	default:
		return fmt.Errorf("render: unknown output format %q (want table or json)", opts.Output)
	}
	repo, res, ps := loadAndRender(opts.Dir, false)
	errOut := opts.Stderr
	if errOut == nil {
		errOut = io.Discard
	}
	for _, p := range ps {
		fmt.Fprintln(errOut, p.String())
	}
	if n := len(ps.Errors()); n > 0 {
		return fmt.Errorf("%s: %d error(s): %w", dirOr(opts.Dir), n, ErrInvalid)
	}
	if opts.Out != "" {
		files, err := res.StatusFiles("", "")
		if err != nil {
			return err
		}
		if err := writeFiles(opts.Out, files); err != nil {
			return err
		}
	}
	if opts.Output == "json" {
		out := renderJSON{Pools: []renderJSONPool{}, Generated: repo.Generated()}
		for _, p := range res.Pools {
			mcs := p.MachineConfigs
			if mcs == nil {
				mcs = []string{}
			}
			out.Pools = append(out.Pools, renderJSONPool{Name: p.Pool.Object.Name, Rendered: p.Rendered.Name, MachineConfigs: mcs})
		}
		enc := json.NewEncoder(opts.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write render output: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tRENDERED\tMACHINECONFIGS")
	for _, p := range res.Pools {
		mcs := strings.Join(p.MachineConfigs, ",")
		if mcs == "" {
			mcs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Pool.Object.Name, p.Rendered.Name, mcs)
	}
	if gen := repo.Generated(); len(gen) > 0 {
		fmt.Fprintln(tw, "\nGENERATED\tFROM")
		for _, g := range gen {
			fmt.Fprintf(tw, "%s\t%s\n", g.Name, g.From)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write render output: %w", err)
	}
	return nil
}

// writeFiles writes files (slash paths) under dir atomically, in a stable
// order.
func writeFiles(dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		if err := renameio.WriteFile(p, files[n], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// validateNotifications checks DIR/.stoker/notifications.yaml, if any, as
// the hub reads it (size bounded before it is read).
func validateNotifications(dir string) api.Problems {
	p := filepath.Join(dir, filepath.FromSlash(api.NotificationsFile))
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return api.Problems{{File: api.NotificationsFile, Message: err.Error(), Severity: api.SeverityError}}
	}
	if st.Size() > api.MaxNotificationsSize {
		return api.Problems{{File: api.NotificationsFile, Severity: api.SeverityError,
			Message: fmt.Sprintf("is %d bytes, more than %d", st.Size(), api.MaxNotificationsSize)}}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return api.Problems{{File: api.NotificationsFile, Message: err.Error(), Severity: api.SeverityError}}
	}
	_, ps := api.ParseNotifications(api.NotificationsFile, data)
	return ps
}
