package fleetview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"sigs.k8s.io/yaml"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/gitsource"
)

// VersionOptions are `stoker version`'s flags.
type VersionOptions struct {
	// Client is this binary's build.
	Client api.HubInfo
	// RepoURL, when set, is the hub's --status-repo: the hub's build is
	// read from hub.yaml on stoker/fleet.
	RepoURL string
	WorkDir string
	Auth    gitsource.AuthOptions
	Output  string // text, json or yaml
	Out     io.Writer
}

// Versions is what `stoker version -o json` prints.
type Versions struct {
	Client api.HubInfo  `json:"client"`
	Hub    *api.HubInfo `json:"hub,omitempty"`
	// HubError says why the hub's version is unknown.
	HubError string `json:"hubError,omitempty"`
}

// RunVersion prints the client's version and, with RepoURL, the hub's.
func RunVersion(ctx context.Context, o VersionOptions) error {
	switch o.Output {
	case "", "text", "json", "yaml":
	default:
		return fmt.Errorf("version: unknown output format %q (want text, json or yaml)", o.Output)
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	v := Versions{Client: o.Client}
	if o.RepoURL != "" {
		hub, err := readHubInfo(ctx, o)
		if err != nil {
			v.HubError = err.Error()
		}
		v.Hub = hub
	}
	switch o.Output {
	case "json":
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := o.Out.Write(b); err != nil {
			return err
		}
	default:
		fmt.Fprintf(o.Out, "Client: %s (%s, %s)\n", o.Client.Version, dash(Short(o.Client.Revision)), o.Client.GoVersion)
		switch {
		case v.Hub != nil:
			fmt.Fprintf(o.Out, "Hub:    %s (%s, %s)\n", v.Hub.Version, dash(Short(v.Hub.Revision)), dash(v.Hub.GoVersion))
		case v.HubError != "":
			fmt.Fprintf(o.Out, "Hub:    unknown: %s\n", v.HubError)
		}
	}
	if v.HubError != "" {
		return fmt.Errorf("version: hub: %s", v.HubError)
	}
	return nil
}

func readHubInfo(ctx context.Context, o VersionOptions) (*api.HubInfo, error) {
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "stoker-version-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	}
	repo, err := gitsource.Open(gitsource.Options{URL: o.RepoURL, WorkDir: o.WorkDir, Auth: o.Auth})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", gitsource.Redact(o.RepoURL), err)
	}
	heads, err := repo.Fetch(ctx, api.FleetBranch)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", api.FleetBranch, err)
	}
	if heads[api.FleetBranch] == "" {
		return nil, fmt.Errorf("%s: %w (has a hub run against this repo?)", api.FleetBranch, gitsource.ErrRefNotFound)
	}
	tree, err := repo.Tree(ctx, heads[api.FleetBranch])
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", api.FleetBranch, err)
	}
	data, err := fs.ReadFile(tree, api.HubFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: the hub predates it", api.FleetBranch, api.HubFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s:%s: %w", api.FleetBranch, api.HubFile, err)
	}
	var h api.HubInfo
	if err := yaml.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("read %s:%s: %w", api.FleetBranch, api.HubFile, err)
	}
	return &h, nil
}
