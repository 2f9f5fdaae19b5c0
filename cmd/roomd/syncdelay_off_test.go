//go:build !syncdelay

package main

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A shipped build has no way to slow its journal down: the variable is
// not read.
func TestShippedBuildsInjectNoSyncLatency(t *testing.T) {
	fs, err := journalFS(func(string) string { return "300ms" }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Nil(t, fs, "the default file system")
}
