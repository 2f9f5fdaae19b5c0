// Package statefile stores small daemon state atomically and with a checksum.
//
// A state file is a one-line envelope followed by the payload:
//
//	roomd-state v1 crc32c=1a2b3c4d len=42\n<42 payload bytes>
//
// The checksum is CRC-32C (Castagnoli) of the payload. A truncated, extended or
// bit-flipped file is reported as corrupt ([ErrCorrupt]) instead of being handed
// to a parser.
//
// [Write] replaces the file atomically: it writes a temporary file in the same
// directory, fsyncs it, renames it over the target and fsyncs the directory, so
// after a crash or power cut the path holds either the old or the new content.
// Temporary files left behind by a crash are never read and are removed by the
// next [Write] to the same path.
package statefile

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxSize is the largest payload [Write] accepts and [Read] believes.
const MaxSize = 16 << 20

const (
	magic      = "roomd-state v1"
	tempPrefix = ".tmp-"
	// maxHeader bounds the envelope line: magic + " crc32c=" + 8 hex + " len=" + up to 8 digits + "\n".
	maxHeader = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNotExist is returned (wrapped) by [Read] when the file does not exist.
// It wraps [fs.ErrNotExist], so errors.Is(err, fs.ErrNotExist) also holds.
var ErrNotExist = fmt.Errorf("state file does not exist: %w", fs.ErrNotExist)

// ErrCorrupt is matched (errors.Is) by every [*CorruptError].
var ErrCorrupt = errors.New("state file corrupt")

// CorruptError reports a state file whose envelope or checksum is wrong.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s corrupt: %s", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Write atomically replaces path with data wrapped in the envelope. The file is
// created with mode 0600. The directory must exist. Leftover temporary files of
// earlier interrupted writes to the same path are removed first (best effort),
// so callers must not run two Writes to the same path concurrently.
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

// Read returns the payload stored at path.
//
// It returns an error wrapping [ErrNotExist] if the file is absent, a
// [*CorruptError] (matching [ErrCorrupt]) if the envelope, length or checksum
// is wrong, and another wrapped error for anything else (for example when path
// is a directory or unreadable).
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read state file %s: %w", path, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read state file %s: %w", path, err)
	}
	defer f.Close()
	// Read at most one byte past the largest valid file so an oversized file
	// is detected without loading it whole.
	raw, err := io.ReadAll(io.LimitReader(f, maxHeader+MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read state file %s: %w", path, err)
	}
	data, reason := decode(raw)
	if reason != "" {
		return nil, &CorruptError{Path: path, Reason: reason}
	}
	return data, nil
}

// decode checks the envelope and returns the payload, or a non-empty reason.
func decode(raw []byte) ([]byte, string) {
	nl := bytes.IndexByte(raw, '\n')
	if nl < 0 {
		if len(raw) == 0 {
			return nil, "empty file"
		}
		return nil, "no envelope line"
	}
	if nl > maxHeader {
		return nil, "envelope line too long"
	}
	fields := strings.Split(string(raw[:nl]), " ")
	if len(fields) != 4 || fields[0]+" "+fields[1] != magic {
		return nil, fmt.Sprintf("bad envelope %q", raw[:nl])
	}
	sumHex, ok := strings.CutPrefix(fields[2], "crc32c=")
	if !ok || len(sumHex) != 8 {
		return nil, fmt.Sprintf("bad checksum field %q", fields[2])
	}
	sum, err := strconv.ParseUint(sumHex, 16, 32)
	if err != nil {
		return nil, fmt.Sprintf("bad checksum field %q", fields[2])
	}
	lenDec, ok := strings.CutPrefix(fields[3], "len=")
	if !ok {
		return nil, fmt.Sprintf("bad length field %q", fields[3])
	}
	n, err := strconv.ParseUint(lenDec, 10, 32)
	if err != nil || n > MaxSize || (len(lenDec) > 1 && lenDec[0] == '0') {
		return nil, fmt.Sprintf("bad length field %q", fields[3])
	}
	data := raw[nl+1:]
	if uint64(len(data)) != n {
		return nil, fmt.Sprintf("payload is %d bytes, envelope says %d", len(data), n)
	}
	if got := crc32.Checksum(data, castagnoli); uint64(got) != sum {
		return nil, fmt.Sprintf("checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	return data, ""
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
