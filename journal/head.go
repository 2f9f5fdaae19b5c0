package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"slices"
)

// The head file records how far the broker has acknowledged, the highest
// LSN known durable, the epoch, the seq reservation, whether the last run
// stopped cleanly, and a small opaque blob for the daemon (its time axis).
// It is allocated once, at its full size, and then only overwritten in
// place, so that recording progress never needs new space on a full disk.
//
// Two slots of headSlot bytes alternate; each ends with a CRC-32C, and the
// valid slot with the higher counter wins, so a write torn by a crash leaves
// the other slot in force. Slot counter%2 holds counter: a new head puts its
// first state (counter 1) in the second slot, so the next write (counter 2)
// goes to the first and never overwrites the only valid slot.
const (
	headName     = "head"
	headTemp     = "head.tmp"
	headSlot     = 2048
	headSize     = 2 * headSlot
	headMagic1   = "RJH1" // before the seq reservation; still read
	headMagic    = "RJH2"
	headFixed1   = 4 + 8 + 8 + 4 + 8 + 8 + 2
	headFixed    = 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 8 + 8 + 4 + 2
	MaxHeadBlob  = headSlot - headFixed - 4
	headCRCBytes = 4
)

// Flags of the head.
const (
	// headClean: the journal was closed with every entry durable; nothing
	// published can be missing from it.
	headClean uint32 = 1 << 0
)

// Pos is a position in the stream of messages the journal's entries give:
// message Msg of entry LSN. As an acknowledgement position it means every
// message before it was acknowledged.
type Pos struct {
	LSN uint64
	Msg uint32
}

// Less reports whether p comes before q.
func (p Pos) Less(q Pos) bool { return p.LSN < q.LSN || p.LSN == q.LSN && p.Msg < q.Msg }

type headState struct {
	format  int // 1 (RJH1) or 2, as read; written as 2
	counter uint64
	acked   Pos
	hwm     uint64 // highest LSN known to be durable
	epoch   Epoch
	// reserved is the seq reservation: no record above it was ever handed
	// out (published from memory) by this journal's room.
	reserved uint64
	// boot identifies the boot of the system that last wrote the head
	// (a hash of its boot id; 0 unknown).
	boot uint64
	// degradedFrom, when not 0, is the first LSN that the disk refused
	// (or failed to sync): entries from it on lived in memory only.
	degradedFrom uint64
	// floor is the seq floor in force: the room's seqs and alert numbers
	// continue above it (raised to the reservation after a power cut).
	floor uint64
	flags uint32
	blob  []byte
}

func encodeHead(h headState) []byte {
	b := make([]byte, 0, headSlot)
	b = append(b, headMagic...)
	b = binary.LittleEndian.AppendUint64(b, h.counter)
	b = binary.LittleEndian.AppendUint64(b, h.acked.LSN)
	b = binary.LittleEndian.AppendUint32(b, h.acked.Msg)
	b = binary.LittleEndian.AppendUint64(b, h.hwm)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.epoch))
	b = binary.LittleEndian.AppendUint64(b, h.reserved)
	b = binary.LittleEndian.AppendUint64(b, h.boot)
	b = binary.LittleEndian.AppendUint64(b, h.degradedFrom)
	b = binary.LittleEndian.AppendUint64(b, h.floor)
	b = binary.LittleEndian.AppendUint32(b, h.flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.blob)))
	b = append(b, h.blob...)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return b
}

func decodeHead(b []byte) (headState, bool) {
	if len(b) < 4 {
		return headState{}, false
	}
	fixed, format := headFixed, 2
	switch string(b[:4]) {
	case headMagic:
	case headMagic1:
		fixed, format = headFixed1, 1
	default:
		return headState{}, false
	}
	if len(b) < fixed+headCRCBytes {
		return headState{}, false
	}
	n := int(binary.LittleEndian.Uint16(b[fixed-2 : fixed]))
	end := fixed + n
	if n > headSlot-fixed-headCRCBytes || end+headCRCBytes > len(b) {
		return headState{}, false
	}
	if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:end+4]) {
		return headState{}, false
	}
	h := headState{
		format:  format,
		counter: binary.LittleEndian.Uint64(b[4:12]),
		acked:   Pos{LSN: binary.LittleEndian.Uint64(b[12:20]), Msg: binary.LittleEndian.Uint32(b[20:24])},
		hwm:     binary.LittleEndian.Uint64(b[24:32]),
		epoch:   Epoch(binary.LittleEndian.Uint64(b[32:40])),
		blob:    bytes.Clone(b[fixed:end]),
	}
	if format == 1 {
		// The layout before the reservation synced every entry before it
		// was published: a stop was as good as clean.
		h.flags = headClean
		return h, true
	}
	h.reserved = binary.LittleEndian.Uint64(b[40:48])
	h.boot = binary.LittleEndian.Uint64(b[48:56])
	h.degradedFrom = binary.LittleEndian.Uint64(b[56:64])
	h.floor = binary.LittleEndian.Uint64(b[64:72])
	h.flags = binary.LittleEndian.Uint32(b[72:76])
	return h, true
}

// headFile is the open head file.
type headFile struct {
	fsys FS
	dir  string
	f    File // nil when it could not be opened or created: progress stays in memory
	cur  headState
}

// loadHead reads the head file in dir. A missing file gives a zero state; a
// file whose slots are both damaged gives a zero state and damaged true (the
// acknowledgement position is lost: entries are published again).
func loadHead(fsys FS, dir string) (st headState, damaged bool, err error) {
	b, err := readFile(fsys, join(dir, headName))
	if errors.Is(err, fs.ErrNotExist) {
		return headState{}, false, nil
	}
	if err != nil {
		return headState{}, false, fmt.Errorf("read journal head: %w", err)
	}
	var best headState
	found := false
	for off := 0; off+headSlot <= len(b); off += headSlot {
		if h, ok := decodeHead(b[off : off+headSlot]); ok && (!found || h.counter > best.counter) {
			best, found = h, true
		}
	}
	return best, !found, nil
}

// openHead opens the head file for writing, creating it at its full size
// if it is missing or short, and writes st as the current state. prev is
// the counter of the state read at Open: the counter continues from it, so
// that the state written now is the newer one whichever slot survives.
func openHead(fsys FS, dir string, st headState, prev uint64) (*headFile, error) {
	h := &headFile{fsys: fsys, dir: dir, cur: headState{counter: prev}}
	path := join(dir, headName)
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		size, serr := f.Size()
		if serr == nil && size == headSize {
			h.f = f
			return h, h.write(st)
		}
		_ = f.Close()
	}
	// Create it whole, then rename it into place.
	tmp := join(dir, headTemp)
	f, err = fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return h, fmt.Errorf("create journal head: %w", err)
	}
	st.counter = prev + 1
	img := make([]byte, headSize)
	copy(img[int64(st.counter%2)*headSlot:], encodeHead(st))
	if _, err := f.WriteAt(img, 0); err != nil {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return h, fmt.Errorf("create journal head: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return h, fmt.Errorf("create journal head: %w", err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return h, fmt.Errorf("create journal head: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		_ = f.Close()
		return h, fmt.Errorf("create journal head: %w", err)
	}
	h.cur = st
	h.f = f
	return h, nil
}

// write overwrites the older slot with st (counter advanced) and syncs it.
func (h *headFile) write(st headState) error {
	if h.f == nil {
		return errors.New("write journal head: not open")
	}
	st.counter = h.cur.counter + 1
	slot := int64(st.counter%2) * headSlot
	if _, err := h.f.WriteAt(encodeHead(st), slot); err != nil {
		return fmt.Errorf("write journal head: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("sync journal head: %w", err)
	}
	h.cur = st
	return nil
}

func (h *headFile) close() error {
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

// Acked returns the acknowledgement position: every message before it was
// acknowledged by the broker.
func (j *Journal) Acked() Pos {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.acked
}

// Ack moves the acknowledgement position forward to p (never back). It is
// written to the head file within HeadEvery, in place: recording progress
// never needs new space.
func (j *Journal) Ack(p Pos) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.acked.Less(p) {
		j.acked = p
		j.want.acked = p
		j.headDirty = true
		j.wake()
	}
}

// Blob returns the daemon's blob as last written to the head file.
func (j *Journal) Blob() []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.want.blob)
}

// SetBlob stores b (at most MaxHeadBlob bytes) in the head file within
// HeadEvery. The daemon keeps its time axis there.
func (j *Journal) SetBlob(b []byte) error {
	if len(b) > MaxHeadBlob {
		return fmt.Errorf("journal blob of %d bytes is above %d", len(b), MaxHeadBlob)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.want.blob = slices.Clone(b)
	j.headDirty = true
	j.used = true
	return nil
}
