package kubeapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes version hack/kube-apiserver.sh builds and caches.
const Version = "v1.37.2"

// RequireEnv names the environment variable that turns "binaries missing"
// from a skip into a failure. CI sets it.
const RequireEnv = "STOKER_REQUIRE_KUBE"

// ErrUnavailable is returned (wrapped) when etcd or kube-apiserver cannot be
// found.
var ErrUnavailable = errors.New("kube-apiserver and etcd binaries not available (run hack/kube-apiserver.sh and set KUBEBUILDER_ASSETS to the directory it prints)")

// Required reports whether missing binaries must fail tests instead of
// skipping them.
func Required() bool { return os.Getenv(RequireEnv) != "" }

// BinDir finds the directory holding kube-apiserver and etcd: the
// KUBEBUILDER_ASSETS environment variable, else the cache
// hack/kube-apiserver.sh fills. etcd may also come from PATH.
func BinDir() (string, error) {
	var candidates []string
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		candidates = append(candidates, d)
	}
	cache := os.Getenv("STOKER_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "stoker")
		}
	}
	if cache != "" {
		candidates = append(candidates, filepath.Join(cache, "kube-"+Version, "bin"))
	}
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "kube-apiserver")) {
			if isExecutable(filepath.Join(d, "etcd")) {
				return d, nil
			}
			if _, err := exec.LookPath("etcd"); err == nil {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("look in %s: %w", strings.Join(candidates, ", "), ErrUnavailable)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Options configure a Server.
type Options struct {
	// BinDir holds kube-apiserver (and etcd, else etcd comes from PATH).
	// Empty means BinDir().
	BinDir string
	// Dir receives etcd data, certificates, keys and logs. Empty means a
	// new temporary directory that Stop removes.
	Dir string
	// ExtraArgs are appended to kube-apiserver's command line.
	ExtraArgs []string
	// StartTimeout bounds waiting for /readyz; default 90s.
	StartTimeout time.Duration
}

// Server is a running etcd + kube-apiserver pair.
type Server struct {
	// URL is the apiserver's https base URL.
	URL string
	// Dir holds data, keys and the logs etcd.log and kube-apiserver.log.
	Dir string

	adminToken string
	caData     []byte
	etcd       *proc
	apiserver  *proc
	removeDir  bool
}

// AdminUser is the user name of the admin identity (group system:masters).
const AdminUser = "stoker-test-admin"

// Start starts a server for one test under t.TempDir() and stops it when
// the test ends. It skips the test when the binaries are missing, unless
// STOKER_REQUIRE_KUBE is set.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		skipOrFail(t, err)
	}
	s, err := StartServer(context.Background(), Options{BinDir: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop kube-apiserver: %v", err)
		}
	})
	return s
}

// Main is for TestMain: it starts one server shared by a package's tests,
// stores it in *srv, runs the tests and stops it. When the binaries are
// missing and STOKER_REQUIRE_KUBE is not set, *srv stays nil and tests that
// call Need skip; with it set, Main fails before running any test.
func Main(m *testing.M, srv **Server) int {
	bin, err := BinDir()
	if err != nil {
		if Required() {
			fmt.Fprintf(os.Stderr, "kubeapi: %v (%s is set)\n", err, RequireEnv)
			return 1
		}
		unavailable = err
		return m.Run()
	}
	s, err := StartServer(context.Background(), Options{BinDir: bin})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubeapi: start kube-apiserver: %v\n", err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "kubeapi: stop kube-apiserver: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// unavailable remembers why Main did not start a server, for Need's message.
var unavailable error

// Need skips (or, with STOKER_REQUIRE_KUBE, fails) t when Main could not
// start a server, and returns the server otherwise.
func Need(t testing.TB, s *Server) *Server {
	t.Helper()
	if s == nil {
		err := unavailable
		if err == nil {
			err = ErrUnavailable
		}
		skipOrFail(t, err)
	}
	return s
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("%v (%s is set, so this is a failure)", err, RequireEnv)
	}
	t.Skipf("skipping: %v (set %s=1 to make this a failure)", err, RequireEnv)
}

// StartServer starts etcd and kube-apiserver on free loopback ports and
// waits until the apiserver is ready. Call Stop when done.
func StartServer(ctx context.Context, opts Options) (*Server, error) {
	if opts.BinDir == "" {
		d, err := BinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = d
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	var err error
	// Free ports are picked by binding and releasing them, so another
	// process may take one before we use it: retry a few times.
	for attempt := 1; attempt <= 3; attempt++ {
		var s *Server
		s, err = start(ctx, opts)
		if err == nil {
			return s, nil
		}
	}
	return nil, err
}

func start(ctx context.Context, opts Options) (s *Server, err error) {
	s = &Server{Dir: opts.Dir}
	if s.Dir == "" {
		s.Dir, err = os.MkdirTemp("", "kubeapi-")
		if err != nil {
			return nil, fmt.Errorf("create server directory: %w", err)
		}
		s.removeDir = true
	} else {
		// A retry reuses the directory: start from scratch.
		s.Dir = filepath.Join(opts.Dir, "kubeapi-"+randomHex(4))
		if err := os.MkdirAll(s.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("create server directory: %w", err)
		}
	}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()

	etcdBin := filepath.Join(opts.BinDir, "etcd")
	if !isExecutable(etcdBin) {
		if etcdBin, err = exec.LookPath("etcd"); err != nil {
			return s, fmt.Errorf("find etcd: %w", ErrUnavailable)
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return s, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.etcd, err = launch(filepath.Join(s.Dir, "etcd.log"), etcdBin,
		"--name", "default",
		"--data-dir", filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
	)
	if err != nil {
		return s, err
	}

	s.adminToken = randomHex(16)
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", s.adminToken, AdminUser, AdminUser)
	tokenFile := filepath.Join(s.Dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return s, fmt.Errorf("write token file: %w", err)
	}
	saKey := filepath.Join(s.Dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return s, err
	}
	certDir := filepath.Join(s.Dir, "certs")
	port := ports[2]
	args := []string{
		"--etcd-servers", clientURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--cert-dir", certDir,
		"--token-auth-file", tokenFile,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saKey,
		"--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--endpoint-reconciler-type", "none",
		"--allow-privileged=true",
		// No controller-manager creates the "default" ServiceAccount of
		// new namespaces, so pods must not require it.
		"--disable-admission-plugins", "ServiceAccount",
	}
	args = append(args, opts.ExtraArgs...)
	s.apiserver, err = launch(filepath.Join(s.Dir, "kube-apiserver.log"), filepath.Join(opts.BinDir, "kube-apiserver"), args...)
	if err != nil {
		return s, err
	}
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	if err := s.waitReady(ctx, certDir, opts.StartTimeout); err != nil {
		return s, fmt.Errorf("%w\n--- kube-apiserver.log (tail) ---\n%s\n--- etcd.log (tail) ---\n%s", err,
			tail(filepath.Join(s.Dir, "kube-apiserver.log")), tail(filepath.Join(s.Dir, "etcd.log")))
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, certDir string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The apiserver writes its self-signed serving certificate (with its CA)
	// before serving; until then, and while it bootstraps, /readyz fails.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // only to poll readiness before the CA is known
	}}
	var last string
	for {
		if exited(s.apiserver) {
			return fmt.Errorf("kube-apiserver exited while starting")
		}
		if exited(s.etcd) {
			return fmt.Errorf("etcd exited while starting")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.adminToken)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for kube-apiserver /readyz at %s: %w (last: %s)", s.URL, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return fmt.Errorf("read serving certificate: %w", err)
	}
	s.caData = ca
	return nil
}

// proc is a started process reaped in the background.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// exited reports whether p's process has ended.
func exited(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// launch starts bin with its output in logPath and reaps it in the
// background, so exited can see it end.
func launch(logPath, bin string, args ...string) (*proc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Die with the test binary even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// Stop stops kube-apiserver, then etcd, and removes the directory if Start
// created it.
func (s *Server) Stop() error {
	var errs []error
	for _, c := range []*proc{s.apiserver, s.etcd} {
		if err := stop(c); err != nil {
			errs = append(errs, err)
		}
	}
	s.apiserver, s.etcd = nil, nil
	if s.removeDir {
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.Dir, err))
		}
	}
	return errors.Join(errs...)
}

func stop(p *proc) error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.cmd.Path, err)
	}
	<-p.done
	return nil
}

// Config returns a rest.Config for the admin identity (system:masters).
func (s *Server) Config() *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     s.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caData},
		QPS:             100,
		Burst:           200,
	}
}

// UserConfig returns an admin rest.Config that impersonates user in groups,
// so RBAC judges requests as that user's.
func (s *Server) UserConfig(user string, groups ...string) *rest.Config {
	c := s.Config()
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// ServiceAccountConfig returns a rest.Config acting as ServiceAccount
// namespace/name, with the groups the apiserver gives ServiceAccounts.
func (s *Server) ServiceAccountConfig(namespace, name string) *rest.Config {
	return s.UserConfig(ServiceAccountUser(namespace, name),
		"system:serviceaccounts", "system:serviceaccounts:"+namespace, "system:authenticated")
}

// ServiceAccountUser is the user name of ServiceAccount namespace/name.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Client returns an admin clientset.
func (s *Server) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.Config())
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	return c
}

// WriteKubeconfig writes an admin kubeconfig for kubectl and helm to path.
func (s *Server) WriteKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeapi"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.caData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: s.adminToken}
	cfg.Contexts["kubeapi"] = &clientcmdapi.Context{Cluster: "kubeapi", AuthInfo: "admin"}
	cfg.CurrentContext = "kubeapi"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service account key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("write service account key %s: %w", path, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
