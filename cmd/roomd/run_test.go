package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/configs"
)

func runArgs(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	noEnv := func(string) string { return "" }
	err = run(context.Background(), append([]string{"roomd"}, args...), noEnv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCheckConfigExample(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "roomd.example.yaml")
	example, err := os.ReadFile(path)
	require.NoError(t, err)

	// As shipped, the example names files under /etc/roomd: check-config
	// says which are missing (a test machine has none of them).
	if _, err := os.Stat("/etc/roomd"); err == nil {
		t.Log("/etc/roomd exists here: not checking the example's missing files")
	} else {
		_, stderr, err := runArgs(t, "check-config", path)
		require.Error(t, err)
		line := func(key string) int {
			for i, l := range strings.Split(string(example), "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), key+":") {
					return i + 1
				}
			}
			t.Fatalf("no %s in the example", key)
			return 0
		}
		assert.Equal(t, fmt.Sprintf("%s:%d: mqtt.password_file: /etc/roomd/mqtt-password does not exist\n", path, line("password_file"))+
			fmt.Sprintf("%s:%d: mqtt.tls.ca_file: /etc/roomd/ca.crt does not exist\n", path, line("ca_file"))+
			fmt.Sprintf("%s:%d: mqtt.tls.cert_file: /etc/roomd/room-1.crt does not exist\n", path, line("cert_file"))+
			fmt.Sprintf("%s:%d: mqtt.tls.key_file: /etc/roomd/room-1.key does not exist\n", path, line("key_file")), stderr)
	}

	// With the files in place it passes.
	dir := t.TempDir()
	doc := string(example)
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"mqtt-password", 0o600}, {"ca.crt", 0o644}, {"room-1.crt", 0o644}, {"room-1.key", 0o600}} {
		p := filepath.Join(dir, f.name)
		require.NoError(t, os.WriteFile(p, []byte("x"), f.mode))
		require.Contains(t, doc, "/etc/roomd/"+f.name)
		doc = strings.ReplaceAll(doc, "/etc/roomd/"+f.name, p)
	}
	path = filepath.Join(dir, "roomd.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	stdout, stderr, err := runArgs(t, "check-config", path)
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Empty(t, stderr)

	// The output is the effective config: parseable, and equal to the file's.
	want, err := configs.Load(path)
	require.NoError(t, err)
	got, err := configs.Parse([]byte(stdout), "stdout")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Contains(t, stdout, "client_id: roomd-room-1")
}

// A load that never returns (a file on a hung network mount) does not hold
// check-config once its context ends (SIGINT, SIGTERM).
func TestCheckConfigEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	stuck := func(string) (*configs.Config, error) {
		close(started)
		<-release
		return nil, errors.New("released")
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	var out, errOut bytes.Buffer
	go func() { errc <- checkConfig(ctx, stuck, []string{"/mnt/hung/roomd.yaml"}, &out, &errOut) }()
	<-started
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	assert.EqualError(t, err, "check-config /mnt/hung/roomd.yaml: stopped before the file was read: context canceled")
	assert.Empty(t, out.String())
}

// What is not a regular file is refused at once, by the real binary.
func TestCheckConfigRefusesFIFOAndDevices(t *testing.T) {
	bin := buildRoomd(t)
	fifo := filepath.Join(t.TempDir(), "roomd.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for path, kind := range map[string]string{fifo: "a named pipe (FIFO)", "/dev/zero": "a character device"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, bin, "check-config", path).CombinedOutput()
		hung := ctx.Err()
		cancel()
		require.NoError(t, hung, "check-config %s hung", path)
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		assert.Equal(t, 1, exit.ExitCode())
		assert.Equal(t, "roomd: check-config: read config "+path+": "+path+" is "+kind+", not a regular file\n", string(out))
	}
}

func TestCheckConfigListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`room: Room 1
colour: blue
policy: {preset: italy, lock_grace: -1s}
device: {backend: sim}
mqtt: {broker: "tcp://127.0.0.1:1883", keepalive: 20s}
`), 0o600))
	stdout, stderr, err := runArgs(t, "check-config", path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "4 problems")
	assert.Empty(t, stdout)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Len(t, lines, 4, "stderr:\n%s", stderr)
	assert.Contains(t, lines[0], path+":1: room:")
	assert.Contains(t, lines[1], path+":2: colour: unknown key")
	assert.Contains(t, lines[2], path+":3: policy.lock_grace: must be between 0s and 1h")
	assert.Contains(t, lines[3], path+":5: mqtt.keepalive: 20s is too long")
	assert.False(t, isUsage(err))
}

func TestCheckConfigUnreadable(t *testing.T) {
	_, _, err := runArgs(t, "check-config", filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.False(t, isUsage(err))
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"check-config"}, {"check-config", "a", "b"}, {"check-config", "-x", "a"}} {
		_, stderr, err := runArgs(t, args...)
		require.Error(t, err, "args %q", args)
		assert.True(t, isUsage(err), "args %q: %v", args, err)
		assert.Contains(t, stderr, "usage:", "args %q", args)
	}
	stdout, _, err := runArgs(t, "help")
	require.NoError(t, err)
	assert.Contains(t, stdout, "check-config FILE")
}

func isUsage(err error) bool { return errors.As(err, new(*usageError)) }

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		stdout, stderr, err := runArgs(t, arg)
		require.NoError(t, err, arg)
		assert.Empty(t, stderr)
		assert.Equal(t, "roomd "+buildinfo.Version()+"\n", stdout, arg)
	}
}
