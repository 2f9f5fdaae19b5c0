package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "--config FILE is required"},
		{[]string{"run", "--config", "x.yaml", "extra"}, "no arguments"},
		{[]string{"run", "--bogus"}, "flag provided but not defined"},
		{[]string{"run", "--config", "x.yaml", "--log-format", "xml"}, "unknown format"},
		{[]string{"run", "--config", "x.yaml", "--log-level", "loud"}, "--log-level"},
	} {
		_, _, err := runArgs(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.True(t, isUsage(err), "%v: %v", tc.args, err)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestRunBadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("room: 1 2 3\n"), 0o600))
	_, _, err := runArgs(t, "run", "--config", path)
	require.Error(t, err)
	assert.False(t, isUsage(err))
	assert.ErrorContains(t, err, "room")

	_, _, err = runArgs(t, "run", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "missing.yaml")
}
