package render

import (
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"stoker.dev/stoker/api"
)

// finish applies repo-wide rules: duplicate names, default pools, sorting.
func (l *loader) finish() {
	r := l.repo
	sort.SliceStable(r.MachineConfigs, func(i, j int) bool {
		return r.MachineConfigs[i].Object.Name < r.MachineConfigs[j].Object.Name
	})
	mcs := r.MachineConfigs[:0]
	for i, mc := range r.MachineConfigs {
		if i > 0 && mcs[len(mcs)-1].Object.Name == mc.Object.Name {
			prev := mcs[len(mcs)-1]
			l.add(api.Problem{File: mc.File, Field: metadataNameField, Message: fmt.Sprintf("duplicate MachineConfig name %q (also in %s)", mc.Object.Name, prev.File), Severity: api.SeverityError})
			continue
		}
		mcs = append(mcs, mc)
	}
	// No more than an eighth of slack (room for files that held no
	// MachineConfig, or what append left): it would be held as long as the
	// Repo.
	switch {
	case len(mcs) == 0:
		r.MachineConfigs = nil
	case cap(mcs)-len(mcs) > len(mcs)/8:
		r.MachineConfigs = append(make([]Source[MachineConfig], 0, len(mcs)), mcs...)
	default:
		r.MachineConfigs = mcs
	}

	sort.SliceStable(r.Pools, func(i, j int) bool { return r.Pools[i].Object.Name < r.Pools[j].Object.Name })
	pools := r.Pools[:0]
	for i, p := range r.Pools {
		if i > 0 && pools[len(pools)-1].Object.Name == p.Object.Name {
			prev := pools[len(pools)-1]
			l.add(api.Problem{File: p.File, Field: metadataNameField, Message: fmt.Sprintf("duplicate MachineConfigPool name %q (also in %s)", p.Object.Name, prev.File), Severity: api.SeverityError})
			continue
		}
		pools = append(pools, p)
	}
	r.Pools = pools
	if !l.opts.NoDefaultPools {
		for _, d := range DefaultPools() {
			if r.Pool(d.Name) == nil {
				r.Pools = append(r.Pools, Source[api.MachineConfigPool]{Doc: -1, Item: -1, Object: d})
			}
		}
		sort.SliceStable(r.Pools, func(i, j int) bool { return r.Pools[i].Object.Name < r.Pools[j].Object.Name })
	}
	l.warnUnselected()
	l.generateMachineConfigs()
}

// warnUnselected warns about every MachineConfig no pool selects (a
// typo'd role label renders nowhere, silently in MCO), naming its file and
// role. MachineConfigs MCO generated (oc get mc exports) are exempt.
func (l *loader) warnUnselected() {
	r := l.repo
	sels := make([]labels.Selector, 0, len(r.Pools))
	for _, p := range r.Pools {
		if p.Object.Spec.MachineConfigSelector == nil {
			continue
		}
		if s, err := metav1.LabelSelectorAsSelector(p.Object.Spec.MachineConfigSelector); err == nil && !s.Empty() {
			sels = append(sels, s)
		}
	}
	for _, mc := range r.MachineConfigs {
		if _, generated := mc.Object.Annotations[api.GeneratedByControllerVersionAnnotation]; generated {
			continue
		}
		set := labels.Set(mc.Object.Labels)
		selected := false
		for _, s := range sels {
			if s.Matches(set) {
				selected = true
				break
			}
		}
		if selected {
			continue
		}
		role, ok := mc.Object.Labels[api.RoleLabel]
		what := fmt.Sprintf("role %q", role)
		if !ok {
			what = "no " + api.RoleLabel + " label"
		}
		l.add(api.Problem{File: mc.File, Field: metadataLabelsField, Severity: api.SeverityWarning,
			Message: fmt.Sprintf("MachineConfig %s (%s) is selected by no pool: it renders nowhere", mc.Object.Name, what)})
	}
}

// DefaultPools returns OpenShift's built-in master and worker pools as MCO's
// manifests define them.
func DefaultPools() []api.MachineConfigPool {
	mk := func(role string) api.MachineConfigPool {
		return api.MachineConfigPool{
			TypeMeta: metav1.TypeMeta{APIVersion: api.MachineConfigGroupVersion, Kind: api.KindMachineConfigPool},
			// The labels MCO's built-in pools carry: KubeletConfig and
			// ContainerRuntimeConfig selectors match them.
			ObjectMeta: metav1.ObjectMeta{Name: role, Labels: map[string]string{
				"machineconfiguration.openshift.io/mco-built-in":           "",
				"pools.operator.machineconfiguration.openshift.io/" + role: "",
			}},
			Spec: api.MachineConfigPoolSpec{
				MachineConfigSelector: &metav1.LabelSelector{MatchLabels: map[string]string{api.RoleLabel: role}},
				NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{api.NodeRoleLabelPrefix + role: ""}},
			},
		}
	}
	return []api.MachineConfigPool{mk(api.PoolMaster), mk(api.PoolWorker)}
}
