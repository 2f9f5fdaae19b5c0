package mqtttest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/wallclock"
)

// Bounds used by the harness while waiting for the mosquitto process.
const (
	readyTimeout = 10 * time.Second       // from start until the port accepts
	exitTimeout  = 10 * time.Second       // after a signal until the process exits
	pollInterval = 20 * time.Millisecond  // between readiness probes
	dialTimeout  = 200 * time.Millisecond // one readiness probe
	logTail      = 64 << 10               // bytes of log shown on failure
)

// MosquittoOptions configures a mosquitto child process. The zero value admits
// no client at all and is refused: set AllowAnonymous or Users.
type MosquittoOptions struct {
	// TLS makes the listener TLS-only. A CA, a server certificate for
	// 127.0.0.1 and localhost, and a client certificate (CN "client") are
	// generated; the URL scheme becomes "ssl".
	TLS bool
	// RequireCertificate (with TLS) makes mosquitto demand a client
	// certificate signed by the generated CA, in addition to any password.
	RequireCertificate bool
	// Users maps usernames to passwords, written as a hashed password file
	// with mosquitto_passwd.
	Users map[string]string
	// ACLFile is the acl_file to use, e.g. ShippedACL(t). Empty means no ACL:
	// every authenticated client may use every topic.
	ACLFile string
	// AllowAnonymous admits clients without a username.
	AllowAnonymous bool
	// ExtraConfig is appended verbatim to the generated mosquitto.conf.
	ExtraConfig string
	// ShippedConfig starts from a production file of configs/mosquitto
	// (ShippedFile) instead of the harness's own settings, replacing only what
	// must differ in a test: every listener gets a free loopback port of its
	// own (ListenerAddr), and the pid file, persistence location, log
	// destination (the log file), certificate, password and ACL paths
	// (ACLFile, or the shipped acl when empty) and include_dir (the harness's
	// conf.d, holding Dropins) are rewritten. It needs TLS and Users, like
	// production; AllowAnonymous must stay false.
	ShippedConfig bool
	// ShippedFile is the file of configs/mosquitto that ShippedConfig starts
	// from; "" means mosquitto.conf.
	ShippedFile string
	// Set rewrites further keywords of the shipped file (see Rewrite), for
	// what a test must run differently; each must be set in the file.
	Set map[string][]string
	// Dropins are shipped files written into the directory the shipped
	// config's include_dir names, each with its own rewrites.
	Dropins []Dropin
}

// Dropin is a shipped file of configs/mosquitto included by the shipped
// config (include_dir), such as a site's bridge to its centre.
type Dropin struct {
	// Name is the file's name in configs/mosquitto; it is written under the
	// same name, which must end in ".conf" for mosquitto to read it.
	Name string
	// Replace lists old, new pairs of text replaced throughout the file
	// before Set (a site's id, say).
	Replace []string
	// Set rewrites keywords of the file (see Rewrite): the bridge's address,
	// certificates, or timings a test cannot wait for.
	Set map[string][]string
	// Append is added at the end of the file (lines a test needs that the
	// file only shows in comments).
	Append string
}

// MosquittoBroker is a mosquitto broker running as a child process on a free
// loopback port, with its files under a per-test temporary directory. Its
// methods must be called from the test's goroutine (they may call t.Fatal).
//
// Persistence is on with autosave_on_changes true and autosave_interval 1:
// mosquitto rewrites its database (write to a new file, then rename) at the
// end of every main-loop pass that changed a session, a subscription, a
// retained message or a queued message. What survives Kill (SIGKILL) and
// Restart is what the last completed save held: persistent sessions and
// their subscriptions, retained messages, and QoS 1 messages queued for
// offline persistent clients. Mosquitto sends PUBACK before that save, so a
// message acknowledged a moment before SIGKILL can be lost; call Flush (which
// also asks for a save, as the shipped config saves only once a minute)
// before Kill to make sure everything acknowledged so far is on disk. Stop (SIGTERM)
// saves everything. QoS 0 messages and in-memory state of clean-session
// clients never survive.
type MosquittoBroker struct {
	// Dir is the harness's temporary directory.
	Dir string
	// ConfigFile is the generated mosquitto.conf.
	ConfigFile string
	// LogFile collects mosquitto's log across restarts; it is shown when the
	// test fails.
	LogFile string
	// DataDir is the persistence_location, kept across restarts.
	DataDir string
	// CA is the generated certificate authority; nil without TLS.
	CA *CA
	// ServerCertFile and ServerKeyFile are the broker's certificate and key;
	// empty without TLS.
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate (CN
	// "client") signed by CA; empty without TLS.
	ClientCertFile, ClientKeyFile string
	// PasswordFile is the generated password file; empty without Users.
	PasswordFile string

	t     testing.TB
	bin   string
	opts  MosquittoOptions
	ports []int // one per listener, in the order of the config

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	exitErr error
}

// Mosquitto starts a mosquitto broker for the test and stops it when the test
// ends. If mosquitto is not installed the test is skipped, or fails when the
// environment variable CI is "true".
func Mosquitto(t testing.TB, opts MosquittoOptions) *MosquittoBroker {
	t.Helper()
	bin := findMosquitto(t)
	if len(opts.Users) == 0 && !opts.AllowAnonymous {
		t.Fatalf("mqtttest: mosquitto options admit no client: set AllowAnonymous or Users")
	}
	if opts.ShippedConfig && (!opts.TLS || len(opts.Users) == 0 || opts.AllowAnonymous) {
		t.Fatalf("mqtttest: mosquitto option ShippedConfig needs TLS and Users, without AllowAnonymous")
	}
	if opts.RequireCertificate && !opts.TLS {
		t.Fatalf("mqtttest: mosquitto option RequireCertificate needs TLS")
	}
	if !opts.ShippedConfig && (opts.ShippedFile != "" || len(opts.Set) > 0 || len(opts.Dropins) > 0) {
		t.Fatalf("mqtttest: mosquitto options ShippedFile, Set and Dropins need ShippedConfig")
	}
	dir := t.TempDir()
	m := &MosquittoBroker{
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "mosquitto.conf"),
		LogFile:    filepath.Join(dir, "mosquitto.log"),
		DataDir:    filepath.Join(dir, "data"),
		t:          t,
		bin:        bin,
		opts:       opts,
	}
	if err := os.Mkdir(m.DataDir, 0o700); err != nil {
		t.Fatalf("mqtttest: create mosquitto data dir: %v", err)
	}
	if opts.TLS {
		certs := filepath.Join(dir, "certs")
		if err := os.Mkdir(certs, 0o700); err != nil {
			t.Fatalf("mqtttest: create mosquitto certs dir: %v", err)
		}
		m.CA = NewCA(t, certs, "ca")
		m.ServerCertFile, m.ServerKeyFile = m.CA.Issue(t, "server", "127.0.0.1", "localhost")
		m.ClientCertFile, m.ClientKeyFile = m.CA.Issue(t, "client")
	}
	if len(opts.Users) > 0 {
		m.PasswordFile = filepath.Join(dir, "passwd")
		writePasswords(t, bin, m.PasswordFile, opts.Users)
	}
	t.Cleanup(m.cleanup)

	// A free port can be taken by someone else between probing and binding;
	// try a few ports before giving up.
	listeners := 1
	if opts.ShippedConfig {
		listeners = m.shippedListeners()
	}
	var err error
	for range 3 {
		m.ports = m.ports[:0]
		for range listeners {
			m.ports = append(m.ports, freePort(t))
		}
		m.writeConfig()
		if err = m.start(); err == nil {
			return m
		}
		if !strings.Contains(m.readLog(), "Address already in use") {
			break
		}
	}
	t.Fatalf("mqtttest: %v\n%s", err, m.readLog())
	return nil
}

// URL returns the broker URL for paho: "tcp://127.0.0.1:NNNN", or
// "ssl://127.0.0.1:NNNN" with TLS.
func (m *MosquittoBroker) URL() string { return m.ListenerURL(0) }

// Addr returns "127.0.0.1:NNNN", the first listener's address.
func (m *MosquittoBroker) Addr() string { return m.ListenerAddr(0) }

// ListenerAddr returns the address of the config's listener i, counted from
// 0 in the order of the config (a shipped config may have several).
func (m *MosquittoBroker) ListenerAddr(i int) string {
	if i < 0 || i >= len(m.ports) {
		m.t.Fatalf("mqtttest: mosquitto has %d listeners, not a listener %d", len(m.ports), i)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.ports[i]))
}

// ListenerURL returns the paho URL of listener i (see URL).
func (m *MosquittoBroker) ListenerURL(i int) string {
	scheme := "tcp"
	if m.opts.TLS {
		scheme = "ssl"
	}
	return scheme + "://" + m.ListenerAddr(i)
}

// TLSConfig returns a client TLS configuration trusting only the generated CA
// and presenting the generated client certificate. Nil without TLS.
func (m *MosquittoBroker) TLSConfig() *tls.Config {
	if m.CA == nil {
		return nil
	}
	return m.CA.ClientTLS(m.t, m.ClientCertFile, m.ClientKeyFile)
}

// Running reports whether the mosquitto process is alive.
func (m *MosquittoBroker) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to exit: no final save, no
// clean disconnects (clients see their connection drop). A no-op when not
// running.
func (m *MosquittoBroker) Kill() {
	m.t.Helper()
	if err := m.signal(syscall.SIGKILL); err != nil {
		m.t.Fatalf("mqtttest: %v", err)
	}
}

// Stop sends SIGTERM and waits for the process to exit; mosquitto saves its
// database first. A no-op when not running.
func (m *MosquittoBroker) Stop() {
	m.t.Helper()
	if err := m.signal(syscall.SIGTERM); err != nil {
		m.t.Fatalf("mqtttest: %v", err)
	}
}

// Restart starts mosquitto again on the same port with the same
// configuration and persistence directory, stopping it with SIGTERM first if
// it is running. It returns once the port accepts connections.
func (m *MosquittoBroker) Restart() {
	m.t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		m.t.Fatalf("mqtttest: restart: %v\n%s", err, m.readLog())
	}
}

// Flush returns once mosquitto has finished the main-loop pass that handled
// everything it acknowledged before the call, and so has saved it: it opens
// a fresh connection and waits for the CONNACK (accepted or refused), which
// mosquitto can only send in a later pass, after the autosave of the earlier
// one. It fails the test if mosquitto does not answer within a few seconds.
func (m *MosquittoBroker) Flush() {
	m.t.Helper()
	if err := m.flush(); err != nil {
		m.t.Fatalf("mqtttest: flush mosquitto on %s: %v", m.Addr(), err)
	}
}

// Answers reports whether mosquitto answers a new connection (CONNACK,
// accepted or refused) within timeout: a broker that is up but stuck does
// not.
func (m *MosquittoBroker) Answers(timeout time.Duration) error {
	return m.probe(timeout)
}

// flush asks mosquitto to write its database (SIGUSR1: the shipped config
// saves once a minute, not after every change), then waits for a round
// trip, which it answers only after the pass of its loop that saved.
func (m *MosquittoBroker) flush() error {
	if m.cmd != nil && m.cmd.Process != nil {
		if err := m.cmd.Process.Signal(syscall.SIGUSR1); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("ask mosquitto %d to save: %w", m.cmd.Process.Pid, err)
		}
	}
	return m.probe(exitTimeout)
}

// probe connects, sends CONNECT and waits for the CONNACK.
func (m *MosquittoBroker) probe(timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	var (
		c   net.Conn
		err error
	)
	if m.opts.TLS {
		c, err = tls.DialWithDialer(&d, "tcp", m.Addr(), m.TLSConfig())
	} else {
		c, err = d.Dial("tcp", m.Addr())
	}
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(wallclock.Deadline(timeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	// MQTT 3.1.1 CONNECT, clean session, keep-alive 60 s, no credentials.
	id := "mqtttest-flush"
	varHeader := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, byte(len(id))}
	pkt := append([]byte{0x10, byte(len(varHeader) + len(id))}, varHeader...)
	pkt = append(pkt, id...)
	if _, err := c.Write(pkt); err != nil {
		return fmt.Errorf("send CONNECT: %w", err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		return fmt.Errorf("read CONNACK: unexpected packet % x", ack)
	}
	if ack[3] == 0 {
		_, _ = c.Write([]byte{0xe0, 0}) // DISCONNECT
	}
	return nil
}

// Version returns the installed mosquitto's version, such as "2.0.11".
func (m *MosquittoBroker) Version() string {
	out, _ := exec.Command(m.bin, "-h").CombinedOutput()
	for _, f := range strings.Fields(string(out)) {
		if f != "" && f[0] >= '0' && f[0] <= '9' && strings.Count(f, ".") == 2 {
			return f
		}
	}
	return ""
}

// Log returns what mosquitto has logged so far, across restarts.
func (m *MosquittoBroker) Log() string { return m.readLog() }

func (m *MosquittoBroker) start() error {
	logf, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open mosquitto log %s: %w", m.LogFile, err)
	}
	cmd := exec.Command(m.bin, "-c", m.ConfigFile)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Do not leave a broker behind if the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done, m.exitErr = cmd, done, nil
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		m.mu.Lock()
		m.exitErr = err
		m.mu.Unlock()
		close(done)
	}()
	return m.waitReady(done)
}

// waitReady polls the port until it accepts a TCP connection, the process
// exits, or readyTimeout passes.
func (m *MosquittoBroker) waitReady(done <-chan struct{}) error {
	deadline := wallclock.Now().Add(readyTimeout)
	ready := 0
	for {
		c, err := net.DialTimeout("tcp", m.ListenerAddr(ready), dialTimeout)
		if err == nil {
			_ = c.Close()
			if ready++; ready == len(m.ports) {
				return nil
			}
			continue
		}
		if wallclock.Now().After(deadline) {
			_ = m.signal(syscall.SIGKILL)
			return fmt.Errorf("mosquitto on %s not accepting after %s: %w", m.ListenerAddr(ready), readyTimeout, err)
		}
		select {
		case <-done:
			m.mu.Lock()
			exitErr := m.exitErr
			m.mu.Unlock()
			return fmt.Errorf("mosquitto on %s exited before accepting connections: %v", m.Addr(), exitErr)
		case <-time.After(pollInterval):
		}
	}
}

// signal sends sig to the running process and waits for it to exit.
func (m *MosquittoBroker) signal(sig syscall.Signal) error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal mosquitto %d with %v: %w", cmd.Process.Pid, sig, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(exitTimeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("mosquitto %d did not exit within %s of %v", cmd.Process.Pid, exitTimeout, sig)
	}
}

func (m *MosquittoBroker) cleanup() {
	err := m.signal(syscall.SIGTERM)
	if err != nil {
		m.t.Errorf("mqtttest: stop mosquitto: %v", err)
	}
	if m.t.Failed() {
		m.t.Logf("mosquitto log (%s):\n%s", m.LogFile, m.readLog())
	}
}

func (m *MosquittoBroker) readLog() string {
	data, err := os.ReadFile(m.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > logTail {
		data = append([]byte("...\n"), data[len(data)-logTail:]...)
	}
	return string(data)
}

func (m *MosquittoBroker) writeConfig() {
	if m.opts.ShippedConfig {
		m.writeShippedConfig()
		return
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Generated by roomd's mqtttest for one test; see configs/mosquitto for production.")
	line("per_listener_settings false")
	if u, err := user.Current(); err == nil && u.Username != "" {
		// Keep the current user when started as root, so the temp files stay readable.
		line("user %s", u.Username)
	}
	line("persistence true")
	line("persistence_location %s/", m.DataDir)
	line("autosave_on_changes true")
	line("autosave_interval 1")
	line("max_inflight_messages 20")
	line("max_queued_messages 10000")
	line("log_dest stderr")
	line("log_type all")
	line("connection_messages true")
	line("log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S")
	line("listener %d 127.0.0.1", m.ports[0])
	if m.opts.TLS {
		line("cafile %s", m.CA.CertFile)
		line("certfile %s", m.ServerCertFile)
		line("keyfile %s", m.ServerKeyFile)
		line("tls_version tlsv1.2")
		line("require_certificate %t", m.opts.RequireCertificate)
	}
	line("allow_anonymous %t", m.opts.AllowAnonymous)
	if m.PasswordFile != "" {
		line("password_file %s", m.PasswordFile)
	}
	if m.opts.ACLFile != "" {
		line("acl_file %s", m.opts.ACLFile)
	}
	if m.opts.ExtraConfig != "" {
		line("%s", m.opts.ExtraConfig)
	}
	if err := os.WriteFile(m.ConfigFile, []byte(b.String()), 0o600); err != nil {
		m.t.Fatalf("mqtttest: write mosquitto config: %v", err)
	}
}

// writePasswords writes the password file for users, failing the test on
// error.
func writePasswords(t testing.TB, mosquittoBin, path string, users map[string]string) {
	t.Helper()
	tool := testtier.Tool(t, "mosquitto_passwd", "mosquitto", filepath.Dir(mosquittoBin), "/usr/bin")
	if err := hashPasswords(tool, path, users); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
}

// WritePasswordFile writes a mosquitto password file for users (name to
// password) at path, hashed with mosquitto_passwd; for callers without a
// test.
func WritePasswordFile(path string, users map[string]string) error {
	tool, err := testtier.LookTool("mosquitto_passwd", append(slices.Clone(mosquittoDirs), "/usr/bin")...)
	if err != nil {
		return fmt.Errorf("%w; install it with `apt-get install mosquitto`", err)
	}
	return hashPasswords(tool, path, users)
}

// hashPasswords writes users as plain "name:password" lines and lets
// mosquitto_passwd -U hash them in place.
func hashPasswords(tool, path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for name := range users {
		if name == "" || strings.ContainsAny(name, ":\n") {
			return fmt.Errorf("bad mosquitto username %q: empty or contains ':' or newline", name)
		}
		if strings.Contains(users[name], "\n") {
			return fmt.Errorf("bad password for mosquitto user %q: contains a newline", name)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%s:%s\n", name, users[name])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	out, err := exec.Command(tool, "-U", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hash password file with %s -U %s: %w\n%s", tool, path, err, out)
	}
	return nil
}

// findMosquitto returns the mosquitto binary, or skips (fails with CI=true)
// the test when it is not installed.
func findMosquitto(t testing.TB) string {
	t.Helper()
	return testtier.Tool(t, "mosquitto", "mosquitto", mosquittoDirs...)
}

// mosquittoDirs are searched for mosquitto after PATH (Debian installs it in
// /usr/sbin, which a non-root PATH often lacks).
var mosquittoDirs = []string{"/usr/sbin", "/usr/local/sbin"}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mqtttest: find free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// shippedText reads the shipped main config.
func (m *MosquittoBroker) shippedText() (path, text string) {
	name := m.opts.ShippedFile
	if name == "" {
		name = "mosquitto.conf"
	}
	path = Shipped(m.t, name)
	data, err := os.ReadFile(path)
	if err != nil {
		m.t.Fatalf("mqtttest: read shipped mosquitto config: %v", err)
	}
	return path, string(data)
}

// shippedListeners counts the listeners of the shipped main config.
func (m *MosquittoBroker) shippedListeners() int {
	path, text := m.shippedText()
	n := Keywords(text)["listener"]
	if n == 0 {
		m.t.Fatalf("mqtttest: shipped mosquitto config %s has no listener", path)
	}
	return n
}

// writeShippedConfig writes the production configuration with the ports,
// paths and certificates of this test substituted, and its drop-ins.
func (m *MosquittoBroker) writeShippedConfig() {
	src, text := m.shippedText()
	acl := m.opts.ACLFile
	if acl == "" {
		acl = ShippedACL(m.t)
	}
	listeners := make([]string, len(m.ports))
	for i, p := range m.ports {
		listeners[i] = fmt.Sprintf("%d 127.0.0.1", p)
	}
	set := map[string][]string{
		"pid_file":             {""},
		"persistence_location": {m.DataDir + "/"},
		"listener":             listeners,
		"cafile":               {m.CA.CertFile},
		"certfile":             {m.ServerCertFile},
		"keyfile":              {m.ServerKeyFile},
		"password_file":        {m.PasswordFile},
		"acl_file":             {acl},
		"log_dest":             {"stderr"},
	}
	confd := filepath.Join(m.Dir, "conf.d")
	if Keywords(text)["include_dir"] > 0 {
		set["include_dir"] = []string{confd}
	} else if len(m.opts.Dropins) > 0 {
		m.t.Fatalf("mqtttest: shipped mosquitto config %s has no include_dir for the drop-ins", src)
	}
	for k, v := range m.opts.Set {
		if _, dup := set[k]; dup {
			m.t.Fatalf("mqtttest: mosquitto option Set rewrites %s, which the harness rewrites itself", k)
		}
		set[k] = v
	}
	out, err := Rewrite(text, set)
	if err != nil {
		m.t.Fatalf("mqtttest: shipped mosquitto config %s: %v", src, err)
	}
	var b strings.Builder
	if u, err := user.Current(); err == nil && u.Username != "" {
		fmt.Fprintf(&b, "user %s\n", u.Username)
	}
	b.WriteString(out + "\n")
	if m.opts.RequireCertificate {
		b.WriteString("require_certificate true\n")
	}
	if m.opts.ExtraConfig != "" {
		b.WriteString(m.opts.ExtraConfig + "\n")
	}
	if err := os.MkdirAll(confd, 0o700); err != nil {
		m.t.Fatalf("mqtttest: create %s: %v", confd, err)
	}
	for _, d := range m.opts.Dropins {
		m.writeDropin(confd, d)
	}
	if err := os.WriteFile(m.ConfigFile, []byte(b.String()), 0o600); err != nil {
		m.t.Fatalf("mqtttest: write mosquitto config: %v", err)
	}
}

func (m *MosquittoBroker) writeDropin(dir string, d Dropin) {
	if !strings.HasSuffix(d.Name, ".conf") || strings.Contains(d.Name, "/") {
		m.t.Fatalf("mqtttest: drop-in %q: want a file name ending in .conf", d.Name)
	}
	if len(d.Replace)%2 != 0 {
		m.t.Fatalf("mqtttest: drop-in %s: Replace wants old, new pairs", d.Name)
	}
	src := Shipped(m.t, d.Name)
	data, err := os.ReadFile(src)
	if err != nil {
		m.t.Fatalf("mqtttest: read drop-in: %v", err)
	}
	text := strings.NewReplacer(d.Replace...).Replace(string(data))
	if text, err = Rewrite(text, d.Set); err != nil {
		m.t.Fatalf("mqtttest: drop-in %s: %v", src, err)
	}
	if d.Append != "" {
		text = strings.TrimRight(text, "\n") + "\n" + d.Append + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, d.Name), []byte(text), 0o600); err != nil {
		m.t.Fatalf("mqtttest: write drop-in: %v", err)
	}
}
