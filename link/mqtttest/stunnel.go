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
// its files under a per-test temporary directory. It stops when the test
// ends.
type StunnelProcess struct {
	// ConfigFile is the rewritten config; LogFile collects stunnel's output
	// and is shown when the test fails.
	ConfigFile, LogFile string

	t    testing.TB
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Stunnel starts stunnel with a shipped config. If stunnel (Debian package
// stunnel4) is not installed the test is skipped, or fails when the
// environment variable CI is "true".
func Stunnel(t testing.TB, o StunnelOptions) *StunnelProcess {
	t.Helper()
	bin := testtier.Tool(t, "stunnel", "stunnel4", "/usr/bin", "/usr/local/bin")
	dir := t.TempDir()
	s := &StunnelProcess{ConfigFile: filepath.Join(dir, "stunnel.conf"), LogFile: filepath.Join(dir, "stunnel.log"), t: t}
	src := Shipped(t, o.File)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("mqtttest: read shipped stunnel config: %v", err)
	}
	if len(o.Replace)%2 != 0 {
		t.Fatalf("mqtttest: stunnel %s: Replace wants old, new pairs", o.File)
	}
	text := strings.NewReplacer(o.Replace...).Replace(string(data))
	for range 3 { // a free port can be taken between probing and binding
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		set := map[string][]string{"accept": {s.addr}, "setuid": {""}, "setgid": {""}, "pid": {""}}
		for k, v := range o.Set {
			if _, dup := set[k]; dup {
				t.Fatalf("mqtttest: stunnel option Set rewrites %s, which the harness rewrites itself", k)
			}
			set[k] = v
		}
		out, err := Rewrite(text, set)
		if err != nil {
			t.Fatalf("mqtttest: shipped stunnel config %s: %v", src, err)
		}
		if err := os.WriteFile(s.ConfigFile, []byte(out), 0o600); err != nil {
			t.Fatalf("mqtttest: write stunnel config: %v", err)
		}
		if err = s.start(bin); err == nil {
			t.Cleanup(s.stop)
			return s
		}
		if !strings.Contains(s.readLog(), "Address already in use") {
			t.Fatalf("mqtttest: %v\n%s", err, s.readLog())
		}
	}
	t.Fatalf("mqtttest: stunnel: no free port\n%s", s.readLog())
	return nil
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

func (s *StunnelProcess) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(exitTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("mqtttest: stunnel did not exit within %s of SIGTERM", exitTimeout)
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
