package migrate

// The earlier layout's state files (state.json, replies.json) are a one-line
// envelope followed by the payload:
//
//	roomd-state v1 crc32c=1a2b3c4d len=42\n<42 payload bytes>
//
// The checksum is CRC-32C (Castagnoli) of the payload. A truncated, extended
// or bit-flipped file is reported as corrupt (ErrCorrupt) instead of being
// handed to a parser.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// MaxSize is the largest payload Read believes.
const MaxSize = 16 << 20

const (
	magic = "roomd-state v1"
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
