package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tempPrefix marks Write's temporary files: "." + base + tempPrefix + random.
const tempPrefix = ".tmp-"

// Write is the earlier layout's writer of the envelope, kept here to make
// the files the reader must take. It atomically replaces path with data
// wrapped in the envelope. The file is created with mode 0600. The directory
// must exist. Leftover temporary files of earlier interrupted writes to the
// same path are removed first (best effort), so callers must not run two
// Writes to the same path concurrently.
func Write(path string, data []byte) error {
	if len(data) > MaxSize {
		return fmt.Errorf("write state file %s: payload of %d bytes exceeds %d", path, len(data), MaxSize)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("write state file %q: path names a directory", path)
	}
	cleanTemps(dir, base)

	f, err := os.CreateTemp(dir, "."+base+tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(op string, err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("write state file %s: %s: %w", path, op, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail("chmod temp file", err)
	}
	var buf bytes.Buffer
	buf.Grow(maxHeader + len(data))
	fmt.Fprintf(&buf, "%s crc32c=%08x len=%d\n", magic, crc32.Checksum(data, castagnoli), len(data))
	buf.Write(data)
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fail("write temp file", err)
	}
	if err := f.Sync(); err != nil {
		return fail("fsync temp file", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write state file %s: close temp file: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write state file %s: rename: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	return nil
}

// cleanTemps removes temporary files of interrupted writes to dir/base.
func cleanTemps(dir, base string) {
	matches, err := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+tempPrefix+"*"))
	if err != nil {
		return
	}
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("x"), []byte(`{"visit":"running","ends":"2025-01-01T10:00:00Z"}`), make([]byte, 70000)} {
		path := filepath.Join(t.TempDir(), "state.json")
		require.NoError(t, Write(path, data))
		got, err := Read(path)
		require.NoError(t, err)
		assert.Equal(t, len(data), len(got))
		assert.Equal(t, string(data), string(got))

		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	}
}

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	require.NoError(t, Write(path, []byte("first")))
	require.NoError(t, Write(path, []byte("second, longer")))
	got, err := Read(path)
	require.NoError(t, err)
	assert.Equal(t, "second, longer", string(got))
}

func TestEnvelopeFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	require.NoError(t, Write(path, []byte("123456789")))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	// CRC-32C of "123456789" is the standard check value e3069283.
	assert.Equal(t, "roomd-state v1 crc32c=e3069283 len=9\n123456789", string(raw))
}

func TestMissing(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "absent"))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotExist)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotErrorIs(t, err, ErrCorrupt)
}

func TestTruncationAtEveryLength(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	require.NoError(t, Write(path, []byte(`{"a":1,"b":"two"}`)))
	full, err := os.ReadFile(path)
	require.NoError(t, err)
	for n := 0; n < len(full); n++ {
		require.NoError(t, os.WriteFile(path, full[:n], 0o600))
		_, err := Read(path)
		var ce *CorruptError
		require.ErrorAs(t, err, &ce, "truncated to %d bytes", n)
		assert.ErrorIs(t, err, ErrCorrupt)
		assert.Equal(t, path, ce.Path)
		assert.NotEmpty(t, ce.Reason)
	}
	// Trailing garbage is corrupt too.
	require.NoError(t, os.WriteFile(path, append(full, '\n'), 0o600))
	_, err = Read(path)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestBitFlips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	require.NoError(t, Write(path, []byte(`{"visit":"v-17","remaining_s":1200}`)))
	full, err := os.ReadFile(path)
	require.NoError(t, err)
	for i := range full {
		for bit := range 8 {
			b := append([]byte(nil), full...)
			b[i] ^= 1 << bit
			data, reason := decode(b)
			// A flip in a hex digit's case bit can yield the same value in
			// another spelling ('a'^0x20 = 'A'); the payload is then intact.
			if reason == "" {
				assert.Equal(t, string(full[len(full)-len(data):]), string(data), "byte %d bit %d", i, bit)
				continue
			}
			require.NoError(t, os.WriteFile(path, b, 0o600))
			_, err := Read(path)
			assert.ErrorIs(t, err, ErrCorrupt, "byte %d bit %d", i, bit)
		}
	}
}

func TestGarbageFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	for _, raw := range []string{
		"",
		"\n",
		"hello world\n",
		"roomd-state v2 crc32c=00000000 len=0\n",
		"roomd-state v1 crc32c=00000000 len=-1\n",
		"roomd-state v1 crc32c=00000000 len=00\n",
		"roomd-state v1 crc32c=0000000 len=0\n",
		"roomd-state v1 crc32c=zzzzzzzz len=0\n",
		"roomd-state v1 crc32c=00000000 len=99999999999\n",
		"roomd-state v1 crc32c=00000000 length=0\n",
		"roomd-state v1 crc32c=00000001 len=0\n",
	} {
		require.NoError(t, os.WriteFile(path, []byte(raw), 0o600))
		_, err := Read(path)
		assert.ErrorIs(t, err, ErrCorrupt, "%q", raw)
	}
	// The empty payload with the right checksum is valid.
	require.NoError(t, os.WriteFile(path, []byte("roomd-state v1 crc32c=00000000 len=0\n"), 0o600))
	got, err := Read(path)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestUnreadable(t *testing.T) {
	// Root can read mode-000 files, so use a directory in place of the file.
	path := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(path, 0o700))
	_, err := Read(path)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrCorrupt)
	assert.NotErrorIs(t, err, ErrNotExist)
	assert.Contains(t, err.Error(), path)

	// Writing over a non-empty directory fails with a clear error and leaves no temp file.
	require.NoError(t, os.WriteFile(filepath.Join(path, "x"), nil, 0o600))
	err = Write(path, []byte("x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestLeftoverTempFilesIgnoredAndCleaned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	require.NoError(t, Write(path, []byte("good")))
	leftover := filepath.Join(dir, ".state"+tempPrefix+"123")
	require.NoError(t, os.WriteFile(leftover, []byte("half-writ"), 0o600))
	other := filepath.Join(dir, ".other"+tempPrefix+"1")
	require.NoError(t, os.WriteFile(other, nil, 0o600))

	got, err := Read(path)
	require.NoError(t, err)
	assert.Equal(t, "good", string(got))

	require.NoError(t, Write(path, []byte("newer")))
	_, err = os.Stat(leftover)
	assert.True(t, errors.Is(err, fs.ErrNotExist), "leftover temp file removed")
	_, err = os.Stat(other)
	assert.NoError(t, err, "temp files of other state files are left alone")
}

func TestTooLarge(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "s"), make([]byte, MaxSize+1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds")
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("roomd-state v1 crc32c=e3069283 len=9\n123456789"))
	f.Add([]byte("roomd-state v1 crc32c=00000000 len=0\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		data, reason := decode(raw)
		if reason == "" {
			assert.LessOrEqual(t, len(data), len(raw))
		}
	})
}
