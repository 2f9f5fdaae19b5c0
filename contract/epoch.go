package contract

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Epoch names one sequence space of a room's records. Consumers deduplicate
// by (room, epoch, seq): within an epoch a seq is never reused, and a room
// that cannot prove which seqs it already handed out (its journal lost,
// damaged or unwritable) continues in a new, random epoch rather than risk
// publishing a different record under a seq a consumer may already hold.
type Epoch uint64

// String returns the epoch as 16 lowercase hex digits, its wire form.
func (e Epoch) String() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(e))
	return hex.EncodeToString(b[:])
}

// ParseEpoch reads the wire form of an epoch.
func ParseEpoch(s string) (Epoch, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("epoch %q: want 16 hex digits", s)
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return 0, fmt.Errorf("epoch %q: want 16 hex digits", s)
	}
	e := Epoch(binary.BigEndian.Uint64(b[:]))
	if e == 0 {
		return 0, fmt.Errorf("epoch %q: zero is not an epoch", s)
	}
	return e, nil
}
