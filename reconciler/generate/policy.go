package generate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// defaultPolicy stands in for a pool without a policy.json of its own:
// containers' permissive default.
const defaultPolicy = `{"default":[{"type":"insecureAcceptAnything"}],"transports":{}}`

// updatePolicyJSON is MCO's updatePolicyJSON without a release payload:
// allowed registries make the default reject and accept each allowed
// scope; blocked registries accept by default and reject each blocked
// scope; the scopes go to the docker transport and, with fewer than three
// slashes, to atomic. Other transports of the base are kept.
func updatePolicyJSON(data []byte, blocked, allowed []string) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte(defaultPolicy)
	}
	var policy map[string]json.RawMessage
	if err := json.Unmarshal(data, &policy); err != nil {
		return nil, fmt.Errorf("decode policy json: %w", err)
	}
	transports := map[string]json.RawMessage{}
	if raw, ok := policy["transports"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &transports); err != nil {
			return nil, fmt.Errorf("decode policy json transports: %w", err)
		}
	}
	type req struct {
		Type string `json:"type"`
	}
	accept, reject := []req{{"insecureAcceptAnything"}}, []req{{"reject"}}
	scopes := map[string][]req{}
	var def []req
	if len(allowed) > 0 {
		def = reject
		for _, r := range allowed {
			scopes[r] = accept
		}
	}
	if len(blocked) > 0 {
		def = accept
		for _, r := range blocked {
			scopes[r] = reject
		}
	}
	atomic := map[string][]req{}
	for s, r := range scopes {
		if strings.Count(s, "/") < 3 {
			atomic[s] = r
		}
	}
	var err error
	if policy["default"], err = json.Marshal(def); err == nil {
		if transports["docker"], err = json.Marshal(scopes); err == nil {
			transports["atomic"], err = json.Marshal(atomic)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encode policy json: %w", err)
	}
	if policy["transports"], err = json.Marshal(transports); err != nil {
		return nil, fmt.Errorf("encode policy json: %w", err)
	}
	out, err := json.MarshalIndent(policy, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode policy json: %w", err)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
