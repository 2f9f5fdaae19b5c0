package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestACLWritesAndChecks: visitctl acl writes the shipped ACL from the
// shipped site file, and --check finds a line an installer changed.
func TestACLWritesAndChecks(t *testing.T) {
	site := filepath.Join("..", "..", "configs", "mosquitto", "site.yaml")
	shipped, err := os.ReadFile(filepath.Join("..", "..", "configs", "mosquitto", "acl"))
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	ctx := context.Background()
	require.NoError(t, run(ctx, []string{"visitctl", "acl", site}, func(string) string { return "" }, nil, &out, &errOut))
	assert.Equal(t, string(shipped), out.String())

	installed := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(installed, shipped, 0o644))
	out.Reset()
	require.NoError(t, run(ctx, []string{"visitctl", "acl", "--check", installed, site}, func(string) string { return "" }, nil, &out, &errOut))
	assert.Contains(t, out.String(), "is what")

	edited := bytes.Replace(shipped, []byte("topic read visitrooms/room-a/cmd\n"), []byte("topic readwrite visitrooms/room-a/cmd\n"), 1)
	require.NotEqual(t, shipped, edited)
	require.NoError(t, os.WriteFile(installed, edited, 0o644))
	err = run(ctx, []string{"visitctl", "acl", "--check", installed, site}, func(string) string { return "" }, nil, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `is "topic readwrite visitrooms/room-a/cmd", want "topic read visitrooms/room-a/cmd"`)
	assert.Equal(t, ExitFailed, exitCode(err))

	bad := filepath.Join(t.TempDir(), "site.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("broker: site\nrooms: [room-a]\noperators: [room-a]\n"), 0o644))
	err = run(ctx, []string{"visitctl", "acl", bad}, func(string) string { return "" }, nil, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"room-a" is already the identity of a room`)
	assert.Equal(t, ExitUsage, exitCode(run(ctx, []string{"visitctl", "acl"}, func(string) string { return "" }, nil, &out, &errOut)))
}
