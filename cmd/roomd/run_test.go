package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	assert.Contains(t, lines[2], path+":3: policy.lock_grace: must not be negative")
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
