package gitsource

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// advertised asks the remote for its refs: one session, closed after
// the advertisement (no objects negotiated). It speaks go-git's transport
// directly instead of Remote.List, which copies the advertisement into a
// storage, a sorted iterator and a slice before the caller sees it: an
// idle agent's poll is just this, every interval. A remote without refs
// is an empty advertisement, not an error.
func (g *GoGit) advertised(ctx context.Context) (*packp.AdvRefs, error) {
	ctx, cancel := g.netCtx(ctx)
	defer cancel()
	ar, err := g.advertisedRefs(ctx)
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return packp.NewAdvRefs(), nil
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, g.red.err(fmt.Errorf("ls-remote %s: %w", g.redacted, err))
	}
	return ar, nil
}

func (g *GoGit) advertisedRefs(ctx context.Context) (ar *packp.AdvRefs, err error) {
	ep, err := transport.NewEndpoint(g.url)
	if err != nil {
		return nil, err
	}
	if ep.Protocol == "git" {
		if ar, err := gitProtoAdvertised(ctx, ep); err == nil || ctx.Err() != nil {
			return ar, err
		}
		// Anything else (a missing repository, an empty one, a refusal)
		// goes through go-git's session, which classifies it.
	}
	s, err := newGoGitSession(ep, g.auth)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil {
			ar, err = nil, cerr
		}
	}()
	return s.AdvertisedReferencesContext(ctx)
}

// newGoGitSession opens go-git's upload-pack session for ep.
func newGoGitSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	c, err := client.NewClient(ep)
	if err != nil {
		return nil, err
	}
	return c.NewUploadPackSession(ep, auth)
}

// gitDefaultPort is git daemon's port, left out of the request's host
// as go-git's git transport leaves it out.
const gitDefaultPort = 9418

// gitProtoAdvertised reads a git:// remote's ref advertisement with
// go-git's request encoder and advertisement decoder over a buffered
// connection. go-git's own git:// session reads the connection unbuffered
// through a goroutine per Read: two reads, two goroutines and two syscalls
// per ref, most of an idle poll's CPU once the repository holds a few
// hundred refs (docs/scale.md). It ends the session as go-git's does, with
// a flush (no objects wanted). Its errors are not classified: the caller
// asks go-git's session again for that.
func gitProtoAdvertised(ctx context.Context, ep *transport.Endpoint) (*packp.AdvRefs, error) {
	port := ep.Port
	if port <= 0 {
		port = gitDefaultPort
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ep.Host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	host := ep.Host
	if port != gitDefaultPort {
		host = net.JoinHostPort(ep.Host, strconv.Itoa(port))
	}
	req := packp.GitProtoRequest{RequestCommand: transport.UploadPackServiceName, Pathname: ep.Path, Host: host}
	if err := req.Encode(conn); err != nil {
		return nil, fmt.Errorf("send upload-pack request: %w", err)
	}
	ar := packp.NewAdvRefs()
	if err := ar.Decode(bufio.NewReader(conn)); err != nil {
		return nil, fmt.Errorf("read ref advertisement: %w", err)
	}
	if ar.IsEmpty() {
		return nil, errors.New("empty ref advertisement")
	}
	if err := pktline.NewEncoder(conn).Flush(); err != nil {
		return nil, fmt.Errorf("end upload-pack session: %w", err)
	}
	return ar, nil
}
