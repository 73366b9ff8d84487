package render

import (
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"stoker.dev/stoker/api"
)

// sharedMeta holds one map for each set of labels (or annotations) that
// loaded MachineConfigs have alike: a repo's MachineConfigs carry a
// handful of label sets (one per role), and each map of a few entries
// costs ~300 bytes for as long as the Repo lives. The maps are never
// modified once loaded (a Repo is read-only to its users).
type sharedMeta struct {
	maps map[string]map[string]string
}

// share sets meta's TypeMeta to the constants it equals and its labels
// and annotations to the maps already held for equal sets.
func (s *sharedMeta) share(tm *metav1.TypeMeta, meta *metav1.ObjectMeta) {
	if tm.APIVersion == api.MachineConfigGroupVersion {
		tm.APIVersion = api.MachineConfigGroupVersion
	}
	if tm.Kind == api.KindMachineConfig {
		tm.Kind = api.KindMachineConfig
	}
	meta.Labels = s.shareMap("l", meta.Labels)
	meta.Annotations = s.shareMap("a", meta.Annotations)
}

func (s *sharedMeta) shareMap(kind string, m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	// On the stack for the few keys MachineConfigs carry: a held set's
	// map costs nothing new.
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Each key and value length-prefixed: no two sets give one string.
	var buf [256]byte
	b := append(buf[:0], kind...)
	for _, k := range keys {
		for _, part := range [2]string{k, m[k]} {
			b = strconv.AppendInt(b, int64(len(part)), 10)
			b = append(b, ':')
			b = append(b, part...)
		}
	}
	if held, ok := s.maps[string(b)]; ok {
		return held
	}
	if s.maps == nil {
		s.maps = map[string]map[string]string{}
	}
	s.maps[string(b)] = m
	return m
}
