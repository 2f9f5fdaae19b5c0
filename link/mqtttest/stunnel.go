package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/wallclock"
)

// StunnelOptions configure Stunnel.
type StunnelOptions struct {
	// File is the shipped stunnel config in configs/mosquitto, such as
	// "site-tunnel.conf".
	File string
	// Replace lists old, new pairs replaced throughout the file first (a
	// site's id, say).
	Replace []string
	// Set rewrites keywords of the file (see Rewrite): where to connect, the
	// certificates, the name to check. The harness itself sets accept (a free
	// loopback port) and drops pid, setuid and setgid.
	Set map[string][]string
}

// StunnelProcess is stunnel running a shipped config as a child process,
// its files under a directory of its own. Stunnel starts one for a test, in
// a per-test temporary directory, and stops it when the test ends;
// StartStunnel starts one for a caller without a test, which calls Close.
type StunnelProcess struct {
	// ConfigFile is the rewritten config; LogFile collects stunnel's output
	// and is shown when the test fails.
	ConfigFile, LogFile string

	t    testing.TB // nil when started by StartStunnel
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Stunnel starts stunnel with a shipped config. If stunnel (Debian package
// stunnel4) is not installed the test is skipped, or fails when the
// environment variable CI is "true".
func Stunnel(t testing.TB, o StunnelOptions) *StunnelProcess {
	t.Helper()
	NeedStunnel(t)
	s, err := startStunnel(t.TempDir(), o)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	s.t = t
	t.Cleanup(s.cleanup)
	return s
}

// StartStunnel starts stunnel with a shipped config and its files under dir
// (created if missing), for a caller without a test; Close stops it. A
// missing stunnel is an error that says how to install it.
func StartStunnel(dir string, o StunnelOptions) (*StunnelProcess, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mqtttest: create %s: %w", dir, err)
	}
	s, err := startStunnel(dir, o)
	if err != nil {
		return nil, fmt.Errorf("mqtttest: %w", err)
	}
	return s, nil
}

// stunnelDirs are searched for stunnel after PATH.
var stunnelDirs = []string{"/usr/bin", "/usr/local/bin"}

// NeedStunnel skips the test, or fails it under CI=true, unless stunnel is
// installed: for a test that starts tunnels through StartStunnel.
func NeedStunnel(t testing.TB) {
	t.Helper()
	testtier.Tool(t, "stunnel", "stunnel4", stunnelDirs...)
}

// LookStunnel returns the installed stunnel, or an error that says how to
// install it.
func LookStunnel() (string, error) {
	p, err := testtier.LookTool("stunnel", stunnelDirs...)
	if err != nil {
		return "", fmt.Errorf("%w; install it with `apt-get install stunnel4`", err)
	}
	return p, nil
}

func startStunnel(dir string, o StunnelOptions) (*StunnelProcess, error) {
	bin, err := LookStunnel()
	if err != nil {
		return nil, err
	}
	s := &StunnelProcess{ConfigFile: filepath.Join(dir, "stunnel.conf"), LogFile: filepath.Join(dir, "stunnel.log")}
	src, err := shippedFile(o.File)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("read shipped stunnel config: %w", err)
	}
	if len(o.Replace)%2 != 0 {
		return nil, fmt.Errorf("stunnel %s: Replace wants old, new pairs", o.File)
	}
	text := strings.NewReplacer(o.Replace...).Replace(string(data))
	for range 3 { // a free port can be taken between probing and binding
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		set := map[string][]string{"accept": {s.addr}, "setuid": {""}, "setgid": {""}, "pid": {""}}
		for k, v := range o.Set {
			if _, dup := set[k]; dup {
				return nil, fmt.Errorf("stunnel option Set rewrites %s, which the harness rewrites itself", k)
			}
			set[k] = v
		}
		out, err := Rewrite(text, set)
		if err != nil {
			return nil, fmt.Errorf("shipped stunnel config %s: %w", src, err)
		}
		if err := os.WriteFile(s.ConfigFile, []byte(out), 0o600); err != nil {
			return nil, fmt.Errorf("write stunnel config: %w", err)
		}
		if err = s.start(bin); err == nil {
			return s, nil
		}
		if !strings.Contains(s.readLog(), "Address already in use") {
			return nil, fmt.Errorf("%w\n%s", err, s.readLog())
		}
	}
	return nil, fmt.Errorf("stunnel: no free port\n%s", s.readLog())
}

// Addr returns the tunnel's local end, "127.0.0.1:NNNN" (its accept).
func (s *StunnelProcess) Addr() string { return s.addr }

// Log returns what stunnel has logged so far.
func (s *StunnelProcess) Log() string { return s.readLog() }

func (s *StunnelProcess) start(bin string) error {
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open stunnel log %s: %w", s.LogFile, err)
	}
	cmd := exec.Command(bin, s.ConfigFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(s.done)
	}()
	deadline := wallclock.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.addr, dialTimeout)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("stunnel exited before accepting on %s", s.addr)
		case <-time.After(pollInterval):
		}
		if wallclock.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-s.done
			return fmt.Errorf("stunnel not accepting on %s after %s: %w", s.addr, readyTimeout, err)
		}
	}
}

// Pid returns the tunnel's process id.
func (s *StunnelProcess) Pid() int { return s.cmd.Process.Pid }

// Close stops stunnel (SIGTERM) and waits for it to exit.
func (s *StunnelProcess) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(exitTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("mqtttest: stunnel did not exit within %s of SIGTERM", exitTimeout)
	}
}

func (s *StunnelProcess) cleanup() {
	if err := s.Close(); err != nil {
		s.t.Error(err)
	}
	if s.t.Failed() {
		s.t.Logf("stunnel log (%s):\n%s", s.LogFile, s.readLog())
	}
}

func (s *StunnelProcess) readLog() string {
	data, err := os.ReadFile(s.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(data) > logTail {
		data = append([]byte("...\n"), data[len(data)-logTail:]...)
	}
	return string(data)
}
