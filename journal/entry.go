package journal

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Epoch is the contract's epoch, the first part of a record's key; the
// journal decides when a new one begins (see the package doc).
type Epoch = contract.Epoch

// ParseEpoch reads the wire form of an epoch.
func ParseEpoch(s string) (Epoch, error) { return contract.ParseEpoch(s) }

// NewEpoch returns a random epoch, never zero.
func NewEpoch() Epoch {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (Go 1.24+)
		if e := Epoch(binary.BigEndian.Uint64(b[:])); e != 0 {
			return e
		}
	}
}

// Reply is a controller's answer to a command, kept with the operator who
// sent it so that a redelivery of the same (operator, request_id) is answered
// again instead of applied. On disk the operator sits beside the reply
// (controller.Reply does not encode its own); a decoded Reply has both.
type Reply struct {
	Operator string           `json:"operator,omitempty"`
	Reply    controller.Reply `json:"reply"`
}

// Message is an MQTT message carried verbatim: records that an earlier
// layout of the state directory had already encoded and not yet delivered.
type Message struct {
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
	Seq     uint64 `json:"seq,omitempty"`
}

// CachedReply is an already encoded reply taken over from an earlier layout,
// kept only so that a redelivered command is answered and not applied again.
// It is never published.
type CachedReply struct {
	Operator  string `json:"operator,omitempty"`
	RequestID string `json:"request_id"`
	Payload   []byte `json:"payload"`
}

// Entry is one step of the room: what the controller announced, the state
// it left, and its answers to commands.
type Entry struct {
	// LSN is the entry's position, assigned by Append: one more per entry for
	// the life of the journal.
	LSN uint64
	// Epoch is the sequence space of Records, assigned by Append.
	Epoch Epoch
	// At is the step's time on the room's time axis.
	At time.Time
	// Checkpoint marks an entry written by the journal itself at the start of
	// a segment: it repeats the latest snapshot so that older segments can be
	// deleted. It carries nothing to publish.
	Checkpoint bool

	Records  []controller.Record
	Snapshot *controller.Snapshot // the state after the step, if it changed
	Replies  []Reply
	Messages []Message
	Cached   []CachedReply

	// lostTo, in a marker written by recovery, is the last LSN of a range
	// of entries lost to damage, starting at LSN.
	lostTo uint64
}

// Stepper is the controller as EntryOf sees it.
type Stepper interface {
	Now() time.Time
	Snapshot() controller.Snapshot
}

// EntryOf is what one controller step must persist before anything of it is
// published: its records, its replies (each with its operator, "" for the
// booking system) and, if the state changed, the snapshot after it. Outputs
// and logs are the caller's; a step that leaves nothing to keep gives an
// entry for which Empty is true.
func EntryOf(c Stepper, rd controller.Ready) *Entry {
	e := &Entry{At: c.Now(), Records: rd.Records}
	for _, r := range rd.Replies {
		e.Replies = append(e.Replies, Reply{Operator: r.Operator, Reply: r})
	}
	if rd.StateChanged {
		snap := c.Snapshot()
		e.Snapshot = &snap
	}
	return e
}

// Empty reports whether the entry carries nothing to keep.
func (e *Entry) Empty() bool {
	return len(e.Records) == 0 && e.Snapshot == nil && len(e.Replies) == 0 && len(e.Messages) == 0 && len(e.Cached) == 0
}

// Seqs returns the first and last seq of the entry's records and messages,
// and false if it has none.
func (e *Entry) Seqs() (first, last uint64, ok bool) {
	for _, r := range e.Records {
		first, last, ok = widen(first, last, ok, r.Seq)
	}
	for _, m := range e.Messages {
		if m.Seq != 0 {
			first, last, ok = widen(first, last, ok, m.Seq)
		}
	}
	return first, last, ok
}

func widen(first, last uint64, ok bool, s uint64) (uint64, uint64, bool) {
	if !ok {
		return s, s, true
	}
	return min(first, s), max(last, s), true
}

// Entry flags, in the frame header.
const (
	flagSnapshot   = 1 << 0
	flagReplies    = 1 << 1
	flagCheckpoint = 1 << 2
	flagMessages   = 1 << 3
	flagRecords    = 1 << 4
	flagCached     = 1 << 5
	flagLost       = 1 << 6 // a marker: entries LSN..lost_to were lost
	knownFlags     = flagSnapshot | flagReplies | flagCheckpoint | flagMessages | flagRecords | flagCached | flagLost
)

// Frame layout (little endian):
//
//	len   uint32  length of the body
//	crc   uint32  CRC-32C over the 4 len bytes and the body
//	body:
//	  format   uint8   1
//	  flags    uint8   see flag*
//	  lsn      uint64
//	  epoch    uint64
//	  at       int64   Unix nanoseconds of the step
//	  seqFirst uint64  0 if the entry carries no seq
//	  seqLast  uint64
//	  json     the rest: records, snapshot, replies, messages, cached, lost_to
//
// The fixed part lets recovery index a journal without decoding JSON.
const (
	frameHeader   = 8
	bodyFixed     = 1 + 1 + 8 + 8 + 8 + 8 + 8
	frameFormat   = 1
	maxBody       = 16 << 20
	minFrame      = frameHeader + bodyFixed + 2 // "{}"
	entryOverhead = frameHeader + bodyFixed
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of frame decoding.
var (
	errShort  = errors.New("frame extends past the end of the data")
	errBadLen = errors.New("frame length out of range")
	errBadCRC = errors.New("frame checksum mismatch")
	errBadHdr = errors.New("frame header malformed")
)

// header is the fixed part of an entry, enough to index it.
type header struct {
	flags    uint8
	lsn      uint64
	epoch    Epoch
	at       time.Time
	seqFirst uint64
	seqLast  uint64
	lostTo   uint64 // markers only, from the JSON
}

func (h *header) has(f uint8) bool { return h.flags&f != 0 }

type body struct {
	Records  []controller.Record  `json:"records,omitempty"`
	Snapshot *controller.Snapshot `json:"snapshot,omitempty"`
	Replies  []Reply              `json:"replies,omitempty"`
	Messages []Message            `json:"messages,omitempty"`
	Cached   []CachedReply        `json:"cached,omitempty"`
	LostTo   uint64               `json:"lost_to,omitempty"`
}

// appendFrame appends the frame of e to dst and returns its header.
func appendFrame(dst []byte, e *Entry) ([]byte, header, error) {
	js, err := json.Marshal(body{Records: e.Records, Snapshot: e.Snapshot, Replies: e.Replies, Messages: e.Messages, Cached: e.Cached, LostTo: e.lostTo})
	if err != nil {
		return dst, header{}, fmt.Errorf("encode journal entry %d: %w", e.LSN, err)
	}
	if bodyFixed+len(js) > maxBody {
		return dst, header{}, fmt.Errorf("encode journal entry %d: %d bytes, above the limit of %d", e.LSN, bodyFixed+len(js), maxBody)
	}
	var flags uint8
	set := func(f uint8, on bool) {
		if on {
			flags |= f
		}
	}
	set(flagSnapshot, e.Snapshot != nil)
	set(flagReplies, len(e.Replies) > 0)
	set(flagCheckpoint, e.Checkpoint)
	set(flagMessages, len(e.Messages) > 0)
	set(flagRecords, len(e.Records) > 0)
	set(flagCached, len(e.Cached) > 0)
	set(flagLost, e.lostTo != 0)
	first, last, _ := e.Seqs()

	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyFixed+len(js)))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, below
	dst = append(dst, frameFormat, flags)
	dst = binary.LittleEndian.AppendUint64(dst, e.LSN)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Epoch))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.At.UnixNano()))
	dst = binary.LittleEndian.AppendUint64(dst, first)
	dst = binary.LittleEndian.AppendUint64(dst, last)
	dst = append(dst, js...)
	f := dst[start:]
	crc := crc32.Update(crc32.Checksum(f[0:4], castagnoli), castagnoli, f[frameHeader:])
	binary.LittleEndian.PutUint32(f[4:8], crc)
	return dst, header{flags: flags, lsn: e.LSN, epoch: e.Epoch, at: time.Unix(0, e.At.UnixNano()).UTC(), seqFirst: first, seqLast: last, lostTo: e.lostTo}, nil
}

// readFrame checks the frame at the start of b and returns its header, its
// JSON and its encoded length. The JSON aliases b.
func readFrame(b []byte) (header, []byte, int, error) {
	if len(b) < frameHeader {
		return header{}, nil, 0, errShort
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n < bodyFixed+2 || n > maxBody {
		return header{}, nil, 0, errBadLen
	}
	size := frameHeader + int(n)
	if len(b) < size {
		return header{}, nil, 0, errShort
	}
	crc := crc32.Update(crc32.Checksum(b[0:4], castagnoli), castagnoli, b[frameHeader:size])
	if crc != binary.LittleEndian.Uint32(b[4:8]) {
		return header{}, nil, 0, errBadCRC
	}
	body := b[frameHeader:size]
	h := header{
		flags:    body[1],
		lsn:      binary.LittleEndian.Uint64(body[2:10]),
		epoch:    Epoch(binary.LittleEndian.Uint64(body[10:18])),
		at:       time.Unix(0, int64(binary.LittleEndian.Uint64(body[18:26]))).UTC(),
		seqFirst: binary.LittleEndian.Uint64(body[26:34]),
		seqLast:  binary.LittleEndian.Uint64(body[34:42]),
	}
	if body[0] != frameFormat || h.flags&^knownFlags != 0 || h.lsn == 0 || h.epoch == 0 || h.seqFirst > h.seqLast {
		return header{}, nil, 0, errBadHdr
	}
	return h, body[bodyFixed:], size, nil
}

// decodeEntry decodes a whole frame.
func decodeEntry(h header, js []byte) (*Entry, error) {
	var b body
	if err := json.Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("decode journal entry %d: %w", h.lsn, err)
	}
	if h.has(flagLost) {
		return nil, fmt.Errorf("journal entries %d to %d: %w", h.lsn, b.LostTo, ErrLost)
	}
	for i := range b.Replies {
		b.Replies[i].Reply.Operator = b.Replies[i].Operator // kept beside the reply
	}
	return &Entry{
		LSN: h.lsn, Epoch: h.epoch, At: h.at, Checkpoint: h.has(flagCheckpoint),
		Records: b.Records, Snapshot: b.Snapshot, Replies: b.Replies, Messages: b.Messages, Cached: b.Cached,
	}, nil
}
