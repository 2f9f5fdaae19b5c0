package vm

import (
	"bytes"
	"compress/gzip"
	"io"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
)

type cpioEntry struct {
	name                 string
	mode                 uint64
	rdevMajor, rdevMinor uint64
	data                 []byte
}

// readNewc parses a newc archive up to its trailer.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		require.GreaterOrEqual(t, len(b)-off, 110, "truncated header at %d", off)
		h := b[off : off+110]
		require.Equal(t, "070701", string(h[:6]), "magic at %d", off)
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			require.NoError(t, err)
			return v
		}
		mode, size, rmaj, rmin, nsize := field(1), field(6), field(9), field(10), field(11)
		off += 110
		name := string(b[off : off+int(nsize)-1])
		require.Equal(t, byte(0), b[off+int(nsize)-1], "name %q not NUL-terminated", name)
		off += int(nsize)
		align()
		data := b[off : off+int(size)]
		off += int(size)
		align()
		if name == "TRAILER!!!" {
			require.Equal(t, len(b), off, "bytes after trailer")
			return out
		}
		out = append(out, cpioEntry{name, mode, rmaj, rmin, data})
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	return raw
}

func TestInitramfsLayout(t *testing.T) {
	init := []byte("\x7fELF not really, odd length.")
	var buf bytes.Buffer
	require.NoError(t, Initramfs(&buf, init))

	entries := readNewc(t, gunzip(t, buf.Bytes()))
	require.Len(t, entries, 3)
	assert.Equal(t, "dev", entries[0].name)
	assert.Equal(t, uint64(0o040755), entries[0].mode)
	assert.Equal(t, "dev/console", entries[1].name)
	assert.Equal(t, uint64(0o020600), entries[1].mode)
	assert.Equal(t, [2]uint64{5, 1}, [2]uint64{entries[1].rdevMajor, entries[1].rdevMinor})
	assert.Equal(t, "init", entries[2].name)
	assert.Equal(t, uint64(0o100755), entries[2].mode)
	assert.Equal(t, init, entries[2].data)
}

// TestInitramfsReadByCpio cross-checks the archive with GNU cpio (skipped
// without it, failed under CI=true).
func TestInitramfsReadByCpio(t *testing.T) {
	cpio := testtier.Tool(t, "cpio", "cpio")
	var buf bytes.Buffer
	require.NoError(t, Initramfs(&buf, []byte("payload")))
	cmd := exec.Command(cpio, "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(gunzip(t, buf.Bytes()))
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "dev\ndev/console\ninit\n", string(out))
}
