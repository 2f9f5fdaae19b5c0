package link

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/daemon/statefile"
)

func TestRepliesLRUAndPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replies")
	r, err := OpenReplies(path, 3)
	require.NoError(t, err)
	for i := 1; i <= 3; i++ {
		require.NoError(t, r.Store(fmt.Sprint("r", i), []byte(fmt.Sprintf(`{"n":%d}`, i))))
	}
	_, ok := r.Lookup("r1") // r1 becomes most recent; r2 is now the oldest
	require.True(t, ok)
	require.NoError(t, r.Store("r4", []byte(`{"n":4}`)))
	_, ok = r.Lookup("r2")
	assert.False(t, ok, "least recently used entry evicted")
	assert.Equal(t, 3, r.Len())

	again, err := OpenReplies(path, 3)
	require.NoError(t, err)
	for _, id := range []string{"r1", "r3", "r4"} {
		got, ok := again.Lookup(id)
		require.True(t, ok, id)
		assert.JSONEq(t, fmt.Sprintf(`{"n":%s}`, id[1:]), string(got))
	}
	_, ok = again.Lookup("r2")
	assert.False(t, ok)
	// The reloaded order is kept: r1 was used before r3 and r4 were stored.
	require.NoError(t, again.Store("r5", []byte(`{}`)))
	_, ok = again.Lookup("r1")
	assert.False(t, ok, "r1 was the least recently used after reload")
}

func TestRepliesRejectsAndIgnores(t *testing.T) {
	r, err := OpenReplies("", 0)
	require.NoError(t, err)
	require.NoError(t, r.Store("", []byte(`{}`)))
	assert.Equal(t, 0, r.Len())
	_, ok := r.Lookup("")
	assert.False(t, ok)
	assert.ErrorContains(t, r.Store("x", []byte(`{`)), "not a JSON document")
}

func TestRepliesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replies")
	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o600))
	r, err := OpenReplies(path, 0)
	require.ErrorIs(t, err, statefile.ErrCorrupt)
	require.NotNil(t, r)
	require.NoError(t, r.Store("a", []byte(`{}`)), "a corrupt cache is replaced on the next store")
	again, err := OpenReplies(path, 0)
	require.NoError(t, err)
	_, ok := again.Lookup("a")
	assert.True(t, ok)
}
