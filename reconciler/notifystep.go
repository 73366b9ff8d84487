package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/sirupsen/logrus"

	"stoker.dev/stoker/api"
	"stoker.dev/stoker/reconciler/fleetview"
	"stoker.dev/stoker/reconciler/notify"
)

// notifyReceivers reads api.NotificationsFile from the default branch at
// commit (once per commit) into the sender. A file that fails validation
// changes nothing: the receivers in force stay, and every problem is
// logged with its file and field (`stoker validate` shows them in CI).
func (h *Hub) notifyReceivers(ctx context.Context, commit string) {
	if commit == "" || commit == h.notifyCommit {
		return
	}
	log := h.cfg.Log.WithFields(logrus.Fields{"commit": fleetview.Short(commit), "path": api.NotificationsFile})
	recv, ps, err := h.readNotifications(ctx, commit)
	if err != nil {
		log.WithError(err).Warn("cannot read the notification receivers; the ones in force stay")
		return // tried again at the next reconcile
	}
	h.notifyCommit = commit
	if len(ps) > 0 {
		for _, p := range ps {
			log.Warnf("%s", p.String())
		}
		log.Warnf("%s fails validation (%d error(s)); the receivers in force stay", api.NotificationsFile, len(ps))
		return
	}
	if h.cfg.Notify == nil {
		if len(recv) > 0 {
			log.Warnf("%d notification receiver(s) named, but the hub has no --notify-secrets-dir: nothing is sent", len(recv))
		}
		return
	}
	h.cfg.Notify.SetReceivers(recv)
	log.Debugf("%d notification receiver(s) in force", len(recv))
}

func (h *Hub) readNotifications(ctx context.Context, commit string) ([]api.Receiver, api.Problems, error) {
	tree, err := h.cfg.Config.Tree(ctx, commit)
	if err != nil {
		return nil, nil, fmt.Errorf("read tree %s: %w", fleetview.Short(commit), err)
	}
	st, err := fs.Stat(tree, api.NotificationsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", api.NotificationsFile, err)
	}
	if st.Size() > api.MaxNotificationsSize {
		return nil, api.Problems{{File: api.NotificationsFile, Commit: commit, Severity: api.SeverityError,
			Message: fmt.Sprintf("is %d bytes, more than %d", st.Size(), api.MaxNotificationsSize)}}, nil
	}
	data, err := fs.ReadFile(tree, api.NotificationsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", api.NotificationsFile, err)
	}
	n, ps := api.ParseNotifications(api.NotificationsFile, data)
	if len(ps) > 0 {
		return nil, ps, nil
	}
	return n.Receivers, nil, nil
}

// notifyStep hands the events of the stoker/fleet transition just pushed
// (prev → plan, recorded by fleetCommit) to the sender, which never
// blocks. Only the hub whose compare-and-swap push won gets here, once
// per transition; a restarted hub reads prev back from Git.
func (h *Hub) notifyStep(prev *fleetTree, plan *planState, fleetCommit string) {
	if h.cfg.Notify == nil || fleetCommit == "" {
		return
	}
	before := notify.Fleet{Pools: prev.pools, Nodes: map[string]api.NodeFleet{}}
	for name, n := range prev.nodes {
		before.Nodes[name] = n.NodeFleet
	}
	after := notify.Fleet{Pools: map[string]api.PoolFleet{}, Nodes: map[string]api.NodeFleet{}}
	for name, p := range plan.fleetPools {
		after.Pools[name] = *p
	}
	for name, n := range plan.fleetNodes {
		after.Nodes[name] = n.NodeFleet
	}
	h.cfg.Notify.Notify(notify.Derive(before, after, h.cfg.Now().UTC(), fleetCommit))
}
