package siteworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// NATSServerVar names a nats-server binary for the clustered centre instead
// of the one built from the pinned module (NATSServer).
const NATSServerVar = "ROOMD_NATS_SERVER"

// natsModule is the module the clustered centre's tests build nats-server
// from, pinned in configs/nats/nats-server.mod apart from roomd's own.
const natsModule = "github.com/nats-io/nats-server/v2"

// NATSServer returns the nats-server binary that runs the clustered centre:
// the one NATSServerVar names, or else the version pinned in
// configs/nats/nats-server.mod, built once (go build) into the user's cache
// directory, where later calls find it. A real process, so that a node can
// be killed (SIGKILL) like a machine that loses power.
func NATSServer() (string, error) {
	if p := os.Getenv(NATSServerVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("nats-server from %s: %w", NATSServerVar, err)
		}
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	mod := filepath.Join(root, "configs", "nats", "nats-server.mod")
	version, err := pinnedVersion(mod, natsModule)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("nats-server: cache directory: %w", err)
	}
	bin := filepath.Join(cache, "roomd", "nats-server-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("nats-server: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// Built to a name of its own and renamed, so that test binaries
	// building at once never run a half-written file.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.Command(goBin, "build", "-modfile="+mod, "-o", tmp, natsModule)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build nats-server %s from %s: %w\n%s", version, mod, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("nats-server: %w", err)
	}
	return bin, nil
}

// NeedNATS returns the nats-server binary (NATSServer), or skips the test
// (fails it under CI=true) when it cannot be had.
func NeedNATS(t testing.TB) string {
	t.Helper()
	bin, err := NATSServer()
	if err != nil {
		testtier.Missing(t, "%v; set %s to a nats-server binary", err, NATSServerVar)
	}
	return bin
}

// pinnedVersion reads the version of module from a go.mod file.
func pinnedVersion(modFile, module string) (string, error) {
	data, err := os.ReadFile(modFile)
	if err != nil {
		return "", fmt.Errorf("pinned version of %s: %w", module, err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		return "", fmt.Errorf("pinned version of %s: not in %s", module, modFile)
	}
	return m[1], nil
}

// moduleRoot is the first directory upwards from the working directory
// that holds go.mod.
func moduleRoot() (string, error) {
	shipped, err := mqtttest.ShippedDir() // <root>/configs/mosquitto
	if err != nil {
		return "", err
	}
	return filepath.Dir(filepath.Dir(shipped)), nil
}

// NATSDir returns the absolute path of configs/nats, the clustered centre's
// shipped files.
func NATSDir() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "configs", "nats"), nil
}

// NATSOptions say how a clustered centre runs.
type NATSOptions struct {
	// Bin is the nats-server binary; empty means NATSServer().
	Bin string
	// Nodes is the number of nodes; 0 means 3, as shipped.
	Nodes int
	// Sites are the ids of the sites that may bridge in: users.conf's site
	// block, once per site.
	Sites []string
	// Debug logs every connection and protocol event (debug: true).
	Debug bool
}

// NATSCentre is the clustered centre: configs/nats's centre.conf, node.conf
// and users.conf on three nats-server nodes with JetStream and MQTT
// (stream_replicas 3), each a process of its own on loopback, with mutual
// TLS between the nodes. Every MQTT client presents a certificate whose
// subject is its user (ClientCert); the site's bridges connect, through
// their tunnels, to the same MQTT listener as the booking system, so a
// node's ClientAddr and BridgeAddr are one.
type NATSCentre struct {
	ca    *mqtttest.CA
	nodes []*NATSNode
	certs map[string][2]string // user → certificate, key
	mu    sync.Mutex
}

// NATSNode is one node of a NATSCentre.
type NATSNode struct {
	Name string
	// ConfigFile is the node's centre.conf; LogFile gets its output.
	ConfigFile, LogFile string
	bin                 string
	mqtt, monitor       string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// testDN is the subject the test CA gives a certificate of CN cn.
func testDN(cn string) string { return "CN=" + cn + ",O=roomd test" }

// StartNATSCentre starts the shipped clustered centre with its files under
// dir and returns once every node reports itself healthy (its JetStream in
// the cluster, /healthz). The nodes' ports are picked free before any node
// starts (each node's routes name the others'), so another process may take
// one meanwhile: a node that then cannot bind starts the whole centre again
// on new ports, three times at most.
func StartNATSCentre(dir string, o NATSOptions) (*NATSCentre, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var c *NATSCentre
		c, err = startNATSCentre(filepath.Join(dir, fmt.Sprintf("attempt-%d", attempt)), o)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
	}
	return nil, err
}

func startNATSCentre(dir string, o NATSOptions) (_ *NATSCentre, err error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Bin == "" {
		if o.Bin, err = NATSServer(); err != nil {
			return nil, err
		}
	}
	shipped, err := NATSDir()
	if err != nil {
		return nil, err
	}
	c := &NATSCentre{certs: map[string][2]string{}}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("nats centre: %w", err), c.Close())
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if c.ca, err = mqtttest.GenerateCA(dir, "centre-ca"); err != nil {
		return nil, err
	}
	for _, u := range []string{BookingUser, MonitorUser} {
		cert, key, err := c.ca.IssueFiles(u)
		if err != nil {
			return nil, err
		}
		c.certs[u] = [2]string{cert, key}
	}
	users, err := natsUsers(filepath.Join(shipped, "users.conf"), o.Sites)
	if err != nil {
		return nil, err
	}
	centre, err := os.ReadFile(filepath.Join(shipped, "centre.conf"))
	if err != nil {
		return nil, err
	}
	nodeConf, err := os.ReadFile(filepath.Join(shipped, "node.conf"))
	if err != nil {
		return nil, err
	}
	type ports struct{ mqtt, cluster, client, monitor string }
	all := make([]ports, o.Nodes)
	var routes []string
	for i := range all {
		p := &all[i]
		for _, a := range []*string{&p.mqtt, &p.cluster, &p.client, &p.monitor} {
			if *a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		routes = append(routes, "nats-route://"+p.cluster)
	}
	peer, peerKey, err := c.ca.IssuePeerFiles("centre-node", "localhost", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	for i, p := range all {
		name := fmt.Sprintf("centre-%d", i+1)
		nd := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(nd, "certs"), 0o700); err != nil {
			return nil, err
		}
		for dst, src := range map[string]string{"node.crt": peer, "node.key": peerKey, "mqtt.crt": peer, "mqtt.key": peerKey,
			"cluster-ca.crt": c.ca.CertFile, "clients-ca.crt": c.ca.CertFile} {
			if err := copyFile(src, filepath.Join(nd, "certs", dst)); err != nil {
				return nil, err
			}
		}
		conf := strings.ReplaceAll(string(centre), "/etc/nats-server/", nd+"/")
		if o.Debug {
			conf += "\ndebug: true\n"
		}
		node, err := rewriteNATSNode(string(nodeConf), map[string]string{
			"server_name": name, "NODE_MQTT": p.mqtt, "NODE_CLUSTER": p.cluster, "NODE_CLIENT": p.client,
			"NODE_MONITOR": p.monitor, "NODE_STORE": filepath.Join(nd, "jetstream"),
		}, routes)
		if err != nil {
			return nil, err
		}
		for file, text := range map[string]string{"centre.conf": conf, "node.conf": node, "users.conf": users} {
			if err := os.WriteFile(filepath.Join(nd, file), []byte(text), 0o600); err != nil {
				return nil, err
			}
		}
		c.nodes = append(c.nodes, &NATSNode{Name: name, ConfigFile: filepath.Join(nd, "centre.conf"),
			LogFile: filepath.Join(nd, "nats-server.log"), bin: o.Bin, mqtt: p.mqtt, monitor: p.monitor})
	}
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			return nil, err
		}
	}
	if err := c.AwaitHealthy(DefaultPatience); err != nil {
		return nil, err
	}
	return c, nil
}

// natsUsers returns the shipped users.conf with its site block once per
// site, and every user the subject of the test CA's certificates.
func natsUsers(path string, sites []string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	text := string(data)
	const begin, end = "    # site site-a\n", "    # end site site-a\n"
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("%s: no block between %q and %q", path, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	block := text[i : j+len(end)]
	var blocks strings.Builder
	for _, s := range sites {
		blocks.WriteString(strings.ReplaceAll(block, "site-a", s))
	}
	text = text[:i] + blocks.String() + text[j+len(end):]
	return regexp.MustCompile(`user: "CN=([^",]+)"`).ReplaceAllStringFunc(text, func(m string) string {
		return `user: "` + testDN(m[len(`user: "CN=`):len(m)-1]) + `"`
	}), nil
}

// rewriteNATSNode sets the variables of the shipped node.conf and its
// NODE_ROUTES; every variable must be there.
func rewriteNATSNode(text string, set map[string]string, routes []string) (string, error) {
	lines := strings.Split(text, "\n")
	var out []string
	found := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		ln := lines[i]
		key, _, ok := strings.Cut(ln, ":")
		key = strings.TrimSpace(key)
		switch v, isSet := set[key]; {
		case ok && isSet && !strings.HasPrefix(key, "#"):
			found[key] = true
			out = append(out, fmt.Sprintf("%s: %q", key, v))
		case ok && key == "NODE_ROUTES":
			found[key] = true
			for i < len(lines) && strings.TrimSpace(lines[i]) != "]" {
				i++
			}
			out = append(out, "NODE_ROUTES: [")
			for _, r := range routes {
				out = append(out, fmt.Sprintf("  %q", r))
			}
			out = append(out, "]")
		default:
			out = append(out, ln)
		}
	}
	for key := range set {
		if !found[key] {
			return "", fmt.Errorf("node.conf has no %s", key)
		}
	}
	if !found["NODE_ROUTES"] {
		return "", errors.New("node.conf has no NODE_ROUTES")
	}
	return strings.Join(out, "\n"), nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o600)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// Nodes returns the three nodes.
func (c *NATSCentre) Nodes() []Node {
	out := make([]Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n
	}
	return out
}

// NATSNodes returns the nodes as what they are.
func (c *NATSCentre) NATSNodes() []*NATSNode { return c.nodes }

// CA signs the nodes' certificates and every client's.
func (c *NATSCentre) CA() *mqtttest.CA { return c.ca }

// ClientCert returns the certificate and key of a central identity
// (booking, monitor), or of any other name, issued on first use: the
// centre maps a certificate's subject to its user.
func (c *NATSCentre) ClientCert(user string) (certFile, keyFile string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.certs[user]; ok {
		return p[0], p[1], nil
	}
	certFile, keyFile, err = c.ca.IssueFiles(user)
	if err != nil {
		return "", "", err
	}
	c.certs[user] = [2]string{certFile, keyFile}
	return certFile, keyFile, nil
}

// AwaitHealthy waits up to timeout until every running node answers
// /healthz with 200: its JetStream is up and current with the cluster.
func (c *NATSCentre) AwaitHealthy(timeout time.Duration) error {
	for _, n := range c.nodes {
		if n.Pid() == 0 {
			continue
		}
		if err := n.AwaitHealthy(timeout); err != nil {
			return err
		}
	}
	return nil
}

// Logs returns what the nodes have logged.
func (c *NATSCentre) Logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "%s (%s):\n%s\n", n.Name, n.LogFile, n.Log())
	}
	return b.String()
}

// Close stops every node.
func (c *NATSCentre) Close() error {
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.stop(syscall.SIGTERM))
	}
	return errors.Join(errs...)
}

// ClientAddr is the node's MQTT listener.
func (n *NATSNode) ClientAddr() string { return n.mqtt }

// BridgeAddr is the node's MQTT listener too: the sites' bridges and the
// central clients share it, each with its certificate.
func (n *NATSNode) BridgeAddr() string { return n.mqtt }

// MonitorAddr is the node's monitoring listener (/healthz, /varz, /jsz).
func (n *NATSNode) MonitorAddr() string { return n.monitor }

// Kill sends SIGKILL.
func (n *NATSNode) Kill() error { return n.stop(syscall.SIGKILL) }

// Restart stops the node if it runs (SIGTERM) and starts it again; it
// returns once its MQTT listener accepts connections, which it does before
// its JetStream has caught up with the cluster (AwaitHealthy).
func (n *NATSNode) Restart() error {
	if err := n.stop(syscall.SIGTERM); err != nil {
		return err
	}
	return n.start()
}

// Pid is the node's process id; 0 while it is down.
func (n *NATSNode) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return 0
	}
	select {
	case <-n.done:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

// Log returns what the node has logged so far, across restarts (the end of
// it).
func (n *NATSNode) Log() string {
	data, err := os.ReadFile(n.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const tail = 32 << 10
	if len(data) > tail {
		data = append([]byte("...\n"), data[len(data)-tail:]...)
	}
	return string(data)
}

// AwaitHealthy waits up to timeout until the node answers /healthz with
// 200.
func (n *NATSNode) AwaitHealthy(timeout time.Duration) error {
	deadline := wallclock.Now().Add(timeout)
	cl := http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.monitor+"/healthz", nil)
		resp, err := cl.Do(req)
		if err == nil {
			var buf [512]byte
			k, _ := resp.Body.Read(buf[:])
			_ = resp.Body.Close()
			last = fmt.Sprintf("%s %s", resp.Status, buf[:k])
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
		} else {
			last = err.Error()
		}
		cancel()
		if wallclock.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %s: %s", n.Name, timeout, last)
		}
		<-time.After(100 * time.Millisecond)
	}
}

func (n *NATSNode) start() error {
	if n.Pid() != 0 {
		return nil
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: log: %w", n.Name, err)
	}
	cmd := exec.Command(n.bin, "-c", n.ConfigFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Do not leave a node behind if the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("%s: start %s: %w", n.Name, n.bin, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	deadline := wallclock.Now().Add(DefaultPatience)
	for {
		c, err := net.DialTimeout("tcp", n.mqtt, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before accepting MQTT connections:\n%s", n.Name, n.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if wallclock.Now().After(deadline) {
			_ = n.stop(syscall.SIGKILL)
			return fmt.Errorf("%s not accepting MQTT connections on %s after %s", n.Name, n.mqtt, DefaultPatience)
		}
	}
}

// stop sends sig and waits for the process to exit (SIGKILL after 30 s).
func (n *NATSNode) stop(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: signal %v: %w", n.Name, sig, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within 30 s of %v", n.Name, sig)
	}
}

// Holds reports whether the node holds a connection of MQTT client id cid
// (its monitoring's /connz).
func (n *NATSNode) Holds(cid string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.monitor+"/connz?mqtt_client="+cid, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("%s: connz: %w", n.Name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var cz struct {
		Conns []struct {
			MQTTClient string `json:"mqtt_client"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cz); err != nil {
		return false, fmt.Errorf("%s: connz: %w", n.Name, err)
	}
	for _, c := range cz.Conns {
		if c.MQTTClient == cid {
			return true, nil
		}
	}
	return false, nil
}

// NodeOf returns the running node that holds MQTT client id cid's
// connection, or nil.
func (c *NATSCentre) NodeOf(cid string) (*NATSNode, error) {
	for _, n := range c.nodes {
		if n.Pid() == 0 {
			continue
		}
		ok, err := n.Holds(cid)
		if err != nil {
			return nil, err
		}
		if ok {
			return n, nil
		}
	}
	return nil, nil
}

// Stop stops the node (SIGTERM: it shuts down in order) and waits for it to
// exit.
func (n *NATSNode) Stop() error { return n.stop(syscall.SIGTERM) }
