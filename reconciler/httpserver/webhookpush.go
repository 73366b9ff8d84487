package httpserver

import (
	"encoding/json"
	"net/http"
	"strings"
)

// pushEvent is what a verified webhook says: the forge that sent it,
// whether it is a push at all, and the branches it moved.
type pushEvent struct {
	forge    string
	push     bool
	branches []string
	// event is the forge's event name, for the log ("ping", "issues").
	event string
}

// parsePush reads the forge's event header and payload: GitHub, Gitea,
// Forgejo, Gogs and GitLab ("ref": "refs/heads/main"), Bitbucket Cloud
// (X-Event-Key repo:push, push.changes[].new), Bitbucket Data Center
// (repo:refs_changed, changes[].ref.id) and Azure DevOps (eventType
// git.push, resource.refUpdates[].name). A payload with no event header
// but a "ref" is taken as a push (a generic sender).
func parsePush(h http.Header, body []byte) pushEvent {
	var p struct {
		Ref  string `json:"ref"`
		Push struct {
			Changes []struct {
				New *struct {
					Type string `json:"type"`
					Name string `json:"name"`
				} `json:"new"`
				Old *struct {
					Type string `json:"type"`
					Name string `json:"name"`
				} `json:"old"`
			} `json:"changes"`
		} `json:"push"`
		Changes []struct {
			Ref struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"ref"`
		} `json:"changes"`
		EventType string `json:"eventType"`
		Resource  struct {
			RefUpdates []struct {
				Name string `json:"name"`
			} `json:"refUpdates"`
		} `json:"resource"`
	}
	_ = json.Unmarshal(body, &p) // an unreadable payload moves no branch
	ev := pushEvent{}
	branchOf := func(ref string) {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok && b != "" {
			ev.branches = append(ev.branches, b)
		}
	}
	switch {
	case h.Get("X-GitHub-Event") != "":
		ev.forge, ev.event = "github", h.Get("X-GitHub-Event")
	case h.Get("X-Gitea-Event") != "":
		ev.forge, ev.event = "gitea", h.Get("X-Gitea-Event")
	case h.Get("X-Forgejo-Event") != "":
		ev.forge, ev.event = "forgejo", h.Get("X-Forgejo-Event")
	case h.Get("X-Gogs-Event") != "":
		ev.forge, ev.event = "gogs", h.Get("X-Gogs-Event")
	case h.Get("X-Gitlab-Event") != "":
		ev.forge, ev.event = "gitlab", h.Get("X-Gitlab-Event")
		ev.push = ev.event == "Push Hook"
		branchOf(p.Ref)
		return ev
	case h.Get("X-Event-Key") != "":
		ev.forge, ev.event = "bitbucket", h.Get("X-Event-Key")
		switch ev.event {
		case "repo:push": // Bitbucket Cloud
			ev.push = true
			for _, c := range p.Push.Changes {
				for _, side := range []*struct {
					Type string `json:"type"`
					Name string `json:"name"`
				}{c.New, c.Old} {
					if side != nil && side.Type == "branch" && side.Name != "" {
						ev.branches = append(ev.branches, side.Name)
						break
					}
				}
			}
		case "repo:refs_changed": // Bitbucket Data Center
			ev.push = true
			for _, c := range p.Changes {
				branchOf(c.Ref.ID)
			}
		}
		return ev
	case p.EventType != "":
		ev.forge, ev.event = "azure-devops", p.EventType
		ev.push = p.EventType == "git.push"
		for _, u := range p.Resource.RefUpdates {
			branchOf(u.Name)
		}
		return ev
	default:
		ev.forge, ev.event = "generic", ""
		ev.push = p.Ref != ""
		branchOf(p.Ref)
		return ev
	}
	ev.push = ev.event == "push"
	branchOf(p.Ref)
	return ev
}

// ignore says why a verified event does not trigger a reconcile, or "".
func (k hook) ignore(ev pushEvent) string {
	if !ev.push {
		if ev.event == "" {
			return "not a push event"
		}
		return "not a push event: " + ev.event
	}
	if k.watched == nil {
		return ""
	}
	for _, b := range ev.branches {
		if k.watched(b) {
			return ""
		}
	}
	if len(ev.branches) == 0 {
		return "the push names no branch"
	}
	return "no watched branch in the push: " + strings.Join(ev.branches, ", ")
}
