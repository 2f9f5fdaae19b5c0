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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/proc"
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

// MosquittoBroker is a mosquitto broker running as a child process on free
// loopback ports, with its files under a directory of its own. Mosquitto
// starts one for a test, in a per-test temporary directory, and its methods
// that return no error must be called from the test's goroutine (they may
// call t.Fatal). StartMosquitto starts one for a caller without a test (a
// benchmark, or a world of brokers that outlives one call): there those
// methods panic instead, and Signal, Start and Close return errors.
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
	// Dir is the harness's directory: the per-test temporary one, or
	// StartMosquitto's.
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

	t     testing.TB // nil when started by StartMosquitto
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
	if len(opts.Users) > 0 {
		findPasswd(t, bin)
	}
	m, err := startMosquitto(t.TempDir(), opts, t)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	t.Cleanup(m.cleanup)
	return m
}

// StartMosquitto starts a mosquitto broker with its files under dir (created
// if missing), for a caller without a test; Close stops it, and the caller
// removes dir. A missing mosquitto is an error that says how to install it.
func StartMosquitto(dir string, opts MosquittoOptions) (*MosquittoBroker, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mqtttest: create %s: %w", dir, err)
	}
	m, err := startMosquitto(dir, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	return m, nil
}

// NeedMosquitto skips the test, or fails it under CI=true, unless mosquitto
// and mosquitto_passwd are installed: for a test that starts brokers through
// StartMosquitto.
func NeedMosquitto(t testing.TB) {
	t.Helper()
	findPasswd(t, findMosquitto(t))
}

// startMosquitto starts the broker in dir; t, if not nil, is the test its
// methods report to.
func startMosquitto(dir string, opts MosquittoOptions, t testing.TB) (*MosquittoBroker, error) {
	bin, err := lookMosquitto()
	if err != nil {
		return nil, err
	}
	switch {
	case len(opts.Users) == 0 && !opts.AllowAnonymous:
		return nil, errors.New("mosquitto options admit no client: set AllowAnonymous or Users")
	case opts.ShippedConfig && (!opts.TLS || len(opts.Users) == 0 || opts.AllowAnonymous):
		return nil, errors.New("mosquitto option ShippedConfig needs TLS and Users, without AllowAnonymous")
	case opts.RequireCertificate && !opts.TLS:
		return nil, errors.New("mosquitto option RequireCertificate needs TLS")
	case !opts.ShippedConfig && (opts.ShippedFile != "" || len(opts.Set) > 0 || len(opts.Dropins) > 0):
		return nil, errors.New("mosquitto options ShippedFile, Set and Dropins need ShippedConfig")
	}
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
		return nil, fmt.Errorf("create mosquitto data dir: %w", err)
	}
	if opts.TLS {
		certs := filepath.Join(dir, "certs")
		if err := os.Mkdir(certs, 0o700); err != nil {
			return nil, fmt.Errorf("create mosquitto certs dir: %w", err)
		}
		if m.CA, err = GenerateCA(certs, "ca"); err != nil {
			return nil, err
		}
		if m.ServerCertFile, m.ServerKeyFile, err = m.CA.IssueFiles("server", "127.0.0.1", "localhost"); err != nil {
			return nil, err
		}
		if m.ClientCertFile, m.ClientKeyFile, err = m.CA.IssueFiles("client"); err != nil {
			return nil, err
		}
	}
	if len(opts.Users) > 0 {
		m.PasswordFile = filepath.Join(dir, "passwd")
		tool, err := lookPasswd(bin)
		if err != nil {
			return nil, err
		}
		if err := hashPasswords(tool, m.PasswordFile, opts.Users); err != nil {
			return nil, err
		}
	}

	// A free port can be taken by someone else between probing and binding;
	// try a few ports before giving up.
	listeners := 1
	if opts.ShippedConfig {
		if listeners, err = m.shippedListeners(); err != nil {
			return nil, err
		}
	}
	for range 3 {
		m.ports = m.ports[:0]
		for range listeners {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			m.ports = append(m.ports, p)
		}
		if err := m.writeConfig(); err != nil {
			return nil, err
		}
		if err = m.start(); err == nil {
			return m, nil
		}
		if !strings.Contains(m.readLog(), "Address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("%w\n%s", err, m.readLog())
}

// helper marks the caller as a test helper, on a test's broker.
func (m *MosquittoBroker) helper() {
	if m.t != nil {
		m.t.Helper()
	}
}

// fatalf reports a failure of a method that returns no error: to the test,
// or as a panic on a broker without one.
func (m *MosquittoBroker) fatalf(format string, args ...any) {
	if m.t == nil {
		panic(fmt.Sprintf("mqtttest: "+format, args...))
	}
	m.t.Helper()
	m.t.Fatalf("mqtttest: "+format, args...)
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
		m.fatalf("mosquitto has %d listeners, not a listener %d", len(m.ports), i)
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
	c, err := m.CA.ClientConfig(m.ClientCertFile, m.ClientKeyFile)
	if err != nil {
		m.fatalf("%v", err)
	}
	return c
}

// Pid returns the running process's id, or 0 when it is not running.
func (m *MosquittoBroker) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	select {
	case <-m.done:
		return 0
	default:
		return m.cmd.Process.Pid
	}
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
	m.helper()
	if err := m.Signal(syscall.SIGKILL); err != nil {
		m.fatalf("%v", err)
	}
}

// Stop sends SIGTERM and waits for the process to exit; mosquitto saves its
// database first. A no-op when not running.
func (m *MosquittoBroker) Stop() {
	m.helper()
	if err := m.Signal(syscall.SIGTERM); err != nil {
		m.fatalf("%v", err)
	}
}

// Restart starts mosquitto again on the same port with the same
// configuration and persistence directory, stopping it with SIGTERM first if
// it is running. It returns once the port accepts connections.
func (m *MosquittoBroker) Restart() {
	m.helper()
	m.Stop()
	if err := m.Start(); err != nil {
		m.fatalf("%v", err)
	}
}

// Signal sends sig to the running process and waits for it to exit (Kill
// and Stop say what SIGKILL and SIGTERM keep). A no-op when not running.
func (m *MosquittoBroker) Signal(sig syscall.Signal) error {
	return m.signal(sig)
}

// Start starts mosquitto again after it exited (Signal, Kill, Stop), on the
// same ports with the same configuration and persistence directory, and
// returns once every listener accepts connections.
func (m *MosquittoBroker) Start() error {
	if m.Running() {
		return fmt.Errorf("start mosquitto on %s: it is running", m.Addr())
	}
	if err := m.start(); err != nil {
		return fmt.Errorf("restart: %w\n%s", err, m.readLog())
	}
	return nil
}

// Close stops mosquitto (SIGTERM, so it saves first), for a broker that
// StartMosquitto started; a test's broker stops when the test ends.
func (m *MosquittoBroker) Close() error {
	return m.signal(syscall.SIGTERM)
}

// Flush returns once mosquitto has finished the main-loop pass that handled
// everything it acknowledged before the call, and so has saved it: it opens
// a fresh connection and waits for the CONNACK (accepted or refused), which
// mosquitto can only send in a later pass, after the autosave of the earlier
// one. It fails the test if mosquitto does not answer within a few seconds.
func (m *MosquittoBroker) Flush() {
	m.helper()
	if err := m.flush(); err != nil {
		m.fatalf("flush mosquitto on %s: %v", m.Addr(), err)
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

// waitReady polls the ports until each accepts a TCP connection and the
// first answers an MQTT CONNECT, the process exits, or readyTimeout
// passes. The CONNACK proves mosquitto's loop runs: a port accepts before
// that, and a SIGTERM sent in between is forgotten (proc.Stop). The probe
// speaks MQTT over TCP, or TLS with the harness's CA and client
// certificate when opts.TLS: the first listener of every configuration
// written here is one of those (a refused CONNACK counts: it is an answer).
func (m *MosquittoBroker) waitReady(done <-chan struct{}) error {
	deadline := wallclock.Now().Add(readyTimeout)
	ready := 0
	for {
		var err error
		if ready < len(m.ports) {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", m.ListenerAddr(ready), dialTimeout); err == nil {
				_ = c.Close()
				ready++
				continue
			}
		} else if err = m.probe(dialTimeout); err == nil {
			return nil
		}
		if wallclock.Now().After(deadline) {
			_ = m.signal(syscall.SIGKILL)
			return fmt.Errorf("mosquitto on %s not answering after %s: %w", m.ListenerAddr(min(ready, len(m.ports)-1)), readyTimeout, err)
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
	if err := proc.Stop(cmd.Process, done, sig, exitTimeout); err != nil {
		return fmt.Errorf("mosquitto: %w", err)
	}
	return nil
}

func (m *MosquittoBroker) cleanup() {
	err := m.Close()
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

func (m *MosquittoBroker) writeConfig() error {
	if m.opts.ShippedConfig {
		return m.writeShippedConfig()
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
		return fmt.Errorf("write mosquitto config: %w", err)
	}
	return nil
}

// findPasswd returns mosquitto_passwd, beside mosquitto or in /usr/bin, or
// skips (fails with CI=true) the test when it is not installed.
func findPasswd(t testing.TB, mosquittoBin string) string {
	t.Helper()
	return testtier.Tool(t, "mosquitto_passwd", "mosquitto", passwdDirs(mosquittoBin)...)
}

func lookPasswd(mosquittoBin string) (string, error) {
	p, err := testtier.LookTool("mosquitto_passwd", passwdDirs(mosquittoBin)...)
	if err != nil {
		return "", fmt.Errorf("%w; install it with `apt-get install mosquitto`", err)
	}
	return p, nil
}

func passwdDirs(mosquittoBin string) []string {
	return []string{filepath.Dir(mosquittoBin), "/usr/bin"}
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

// lookMosquitto is findMosquitto for a caller without a test.
func lookMosquitto() (string, error) {
	p, err := testtier.LookTool("mosquitto", mosquittoDirs...)
	if err != nil {
		return "", fmt.Errorf("%w; install it with `apt-get install mosquitto`", err)
	}
	return p, nil
}

// mosquittoDirs are searched for mosquitto after PATH (Debian installs it in
// /usr/sbin, which a non-root PATH often lacks).
var mosquittoDirs = []string{"/usr/sbin", "/usr/local/sbin"}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shippedText reads the shipped main config.
func (m *MosquittoBroker) shippedText() (path, text string, err error) {
	name := m.opts.ShippedFile
	if name == "" {
		name = "mosquitto.conf"
	}
	if path, err = shippedFile(name); err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read shipped mosquitto config: %w", err)
	}
	return path, string(data), nil
}

// shippedListeners counts the listeners of the shipped main config.
func (m *MosquittoBroker) shippedListeners() (int, error) {
	path, text, err := m.shippedText()
	if err != nil {
		return 0, err
	}
	n := Keywords(text)["listener"]
	if n == 0 {
		return 0, fmt.Errorf("shipped mosquitto config %s has no listener", path)
	}
	return n, nil
}

// writeShippedConfig writes the production configuration with the ports,
// paths and certificates of this broker substituted, and its drop-ins.
func (m *MosquittoBroker) writeShippedConfig() error {
	src, text, err := m.shippedText()
	if err != nil {
		return err
	}
	acl := m.opts.ACLFile
	if acl == "" {
		if acl, err = shippedFile("acl"); err != nil {
			return err
		}
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
		return fmt.Errorf("shipped mosquitto config %s has no include_dir for the drop-ins", src)
	}
	for k, v := range m.opts.Set {
		if _, dup := set[k]; dup {
			return fmt.Errorf("mosquitto option Set rewrites %s, which the harness rewrites itself", k)
		}
		set[k] = v
	}
	out, err := Rewrite(text, set)
	if err != nil {
		return fmt.Errorf("shipped mosquitto config %s: %w", src, err)
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
		return fmt.Errorf("create %s: %w", confd, err)
	}
	for _, d := range m.opts.Dropins {
		if err := writeDropin(confd, d); err != nil {
			return err
		}
	}
	if err := os.WriteFile(m.ConfigFile, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write mosquitto config: %w", err)
	}
	return nil
}

func writeDropin(dir string, d Dropin) error {
	if !strings.HasSuffix(d.Name, ".conf") || strings.Contains(d.Name, "/") {
		return fmt.Errorf("drop-in %q: want a file name ending in .conf", d.Name)
	}
	if len(d.Replace)%2 != 0 {
		return fmt.Errorf("drop-in %s: Replace wants old, new pairs", d.Name)
	}
	src, err := shippedFile(d.Name)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read drop-in: %w", err)
	}
	text := strings.NewReplacer(d.Replace...).Replace(string(data))
	if text, err = Rewrite(text, d.Set); err != nil {
		return fmt.Errorf("drop-in %s: %w", src, err)
	}
	if d.Append != "" {
		text = strings.TrimRight(text, "\n") + "\n" + d.Append + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, d.Name), []byte(text), 0o600); err != nil {
		return fmt.Errorf("write drop-in: %w", err)
	}
	return nil
}
