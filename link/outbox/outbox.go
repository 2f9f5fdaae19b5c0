// Package outbox is roomd's durable on-disk queue of MQTT messages awaiting
// broker acknowledgement.
//
// The link appends every event and alert before publishing it (the append is
// fsync'd before [Outbox.Append] returns), publishes with QoS 1 and acks the
// entry once the broker confirmed it. After a crash or power cut at any
// instant, [Open] recovers every appended, unacknowledged entry in append
// order; the link republishes them (MQTT QoS 1 is at-least-once, so a message
// may be published twice but never lost).
//
// On disk the outbox is a directory (mode 0700, files 0600) holding
//
//   - LOCK: flock'd while open, so two processes cannot share the outbox;
//   - seg-<first id, 20 digits>.log: append-only segments of CRC-32C framed
//     records (see record.go); the highest-numbered segment is active;
//   - acks.log: CRC-framed ids of acknowledged entries.
//
// A segment is deleted once every record in it is acknowledged and it is no
// longer active; the ack file is then rewritten to drop acks of deleted
// segments. The active segment rotates when it would exceed
// [Limits.SegmentBytes]. Entry ids are strictly increasing for the life of the
// directory: the active segment's name and records carry the high-water mark.
//
// Recovery: an incomplete record at the end of the active segment (a write
// cut short by power loss) is truncated away and counted in
// [Recovery.TornBytes]; this is expected and loses nothing that Append
// confirmed. A damaged record anywhere else is skipped, the records after it
// are recovered, and the loss is counted in [Recovery.Dropped]: the daemon must
// raise an alert when it is non-zero. A damaged ack record can only cause a
// duplicate publish ([Recovery.CorruptAcks]).
//
// Errors from the file system are returned, never panicked on.
package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Entry is one queued message.
type Entry struct {
	// ID is unique and strictly increasing in append order, across restarts.
	ID       uint64
	Topic    string
	Payload  []byte
	Retained bool
}

// Limits bound the outbox. Zero fields take the defaults below.
type Limits struct {
	// MaxEntries bounds the number of unacknowledged entries (default 10000).
	MaxEntries int
	// MaxBytes bounds the encoded size of unacknowledged entries, as reported
	// by Bytes (default 64 MiB).
	MaxBytes int64
	// SegmentBytes is the size at which the active segment rotates
	// (default 1 MiB). A single larger record gets a segment of its own.
	SegmentBytes int64
}

// Default limits.
const (
	DefaultMaxEntries   = 10000
	DefaultMaxBytes     = 64 << 20
	DefaultSegmentBytes = 1 << 20
)

// Recovery reports what Open found damaged on disk.
type Recovery struct {
	// Dropped is a lower bound on records lost to corruption. Non-zero means
	// messages were lost: raise an alert.
	Dropped int
	// TornBytes is the size of the incomplete record removed from the end of
	// the active segment, as left by a crash or power cut during an append
	// that therefore never returned success. Nothing confirmed is lost.
	TornBytes int64
	// CorruptAcks counts damaged regions in the ack file. Affected entries
	// are pending again and will be published twice; nothing is lost.
	CorruptAcks int
}

var (
	// ErrFull is returned by Append when the entry would exceed the limits.
	ErrFull = errors.New("outbox full")
	// ErrTooLarge is returned by Append for a topic or payload over the
	// size limits or larger than Limits.MaxBytes.
	ErrTooLarge = errors.New("outbox entry too large")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("outbox closed")
	// ErrLocked is returned by Open when another open outbox holds the directory.
	ErrLocked = errors.New("outbox locked by another process")
)

const (
	lockName = "LOCK"
	ackName  = "acks.log"
	ackTemp  = "acks.log.tmp"
	segPre   = "seg-"
	segExt   = ".log"
)

type segment struct {
	base uint64
	path string
	size int64
	ids  []uint64 // valid record ids in file order
	live int      // how many of ids are unacknowledged
}

type item struct {
	e    Entry
	seg  *segment
	size int64
}

// Outbox is an open outbox directory. It is safe for concurrent use.
type Outbox struct {
	dir string
	lim Limits
	rec Recovery

	mu       sync.Mutex
	closed   bool
	lock     *os.File
	segs     []*segment // ascending base; the last one is active
	active   *os.File   // append handle of segs[len(segs)-1]
	sealed   bool       // active segment must rotate before the next append
	acks     *os.File
	acksSize int64
	pending  map[uint64]*item
	bytes    int64
	nextID   uint64
	buf      []byte
}

// Open opens (creating if needed) the outbox in dir and recovers its
// contents. Damage found is reported by Recovered, not as an error; errors
// mean the outbox cannot be used. Open fails with ErrLocked if another open
// Outbox (in this or another process) holds dir.
func Open(dir string, limits Limits) (*Outbox, error) {
	lim, err := limits.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open outbox %s: create directory: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open outbox %s: restrict directory to 0700: %w", dir, err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	o := &Outbox{dir: dir, lim: lim, lock: lock, pending: make(map[uint64]*item)}
	if err := o.recover(); err != nil {
		o.closeFiles()
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	return o, nil
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxEntries < 0 || l.MaxBytes < 0 || l.SegmentBytes < 0 {
		return l, fmt.Errorf("limits must not be negative: %+v", l)
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.SegmentBytes == 0 {
		l.SegmentBytes = DefaultSegmentBytes
	}
	return l, nil
}

// recover loads the directory into o. The caller holds the lock file.
func (o *Outbox) recover() error {
	_ = os.Remove(filepath.Join(o.dir, ackTemp)) // interrupted ack rewrite; acks.log is intact

	names, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("list directory: %w", err)
	}
	for _, de := range names {
		base, ok := parseSegName(de.Name())
		if !ok {
			continue
		}
		o.segs = append(o.segs, &segment{base: base, path: filepath.Join(o.dir, de.Name())})
	}
	slices.SortFunc(o.segs, func(a, b *segment) int { return cmpU64(a.base, b.base) })

	acked, maxAck, err := o.loadAcks()
	if err != nil {
		return err
	}

	var lastID uint64
	corruptLast := false
	for i, s := range o.segs {
		upper := uint64(math.MaxUint64)
		if i+1 < len(o.segs) {
			upper = o.segs[i+1].base
		}
		isLast := i == len(o.segs)-1
		dropped, err := o.loadSegment(s, upper, isLast, acked)
		if err != nil {
			return err
		}
		o.rec.Dropped += dropped
		if isLast && dropped > 0 {
			corruptLast = true
		}
		if n := len(s.ids); n > 0 {
			lastID = s.ids[n-1]
		}
	}

	o.nextID = max(lastID, maxAck) + 1
	if n := len(o.segs); n > 0 {
		o.nextID = max(o.nextID, o.segs[n-1].base)
	}

	if len(o.segs) == 0 {
		if err := o.createSegment(); err != nil {
			return err
		}
	} else {
		act := o.segs[len(o.segs)-1]
		f, err := os.OpenFile(act.path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open active segment: %w", err)
		}
		o.active = f
		// A segment with damage in the middle stops taking appends, so it is
		// deleted (and stops being reported) once its valid records are acked.
		o.sealed = corruptLast && len(o.segs[len(o.segs)-1].ids) > 0
	}

	af, err := os.OpenFile(filepath.Join(o.dir, ackName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open ack file: %w", err)
	}
	o.acks = af
	if err := syncDir(o.dir); err != nil {
		return err
	}

	oldest := o.segs[0].base
	stale := false
	for id := range acked {
		if id < oldest {
			stale = true
			break
		}
	}
	if o.compact() || stale || o.rec.CorruptAcks > 0 {
		o.rewriteAcks()
	}
	return nil
}

// loadAcks reads the ack file, truncating an incomplete last record.
func (o *Outbox) loadAcks() (map[uint64]bool, uint64, error) {
	path := filepath.Join(o.dir, ackName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[uint64]bool{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read ack file: %w", err)
	}
	acked := make(map[uint64]bool, len(b)/ackSize)
	var maxAck uint64
	end := 0 // end of the last valid ack record
	for off := 0; off < len(b); {
		if id, ok := decodeAck(b[off:]); ok {
			acked[id] = true
			maxAck = max(maxAck, id)
			off += ackSize
			end = off
			continue
		}
		next := off + 1
		for next < len(b) {
			if _, ok := decodeAck(b[next:]); ok {
				break
			}
			next++
		}
		if next < len(b) {
			o.rec.CorruptAcks++
		}
		off = next
	}
	o.acksSize = int64(end)
	if end < len(b) {
		if err := truncateSync(path, int64(end)); err != nil {
			return nil, 0, fmt.Errorf("truncate torn ack file: %w", err)
		}
	}
	return acked, maxAck, nil
}

// loadSegment reads s, records its valid entries and returns a lower bound on
// the records lost to damage. Valid ids are increasing and below upper. An
// invalid tail of the last segment is a torn append: it is truncated away.
func (o *Outbox) loadSegment(s *segment, upper uint64, isLast bool, acked map[uint64]bool) (int, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return 0, fmt.Errorf("read segment %s: %w", filepath.Base(s.path), err)
	}
	prev := s.base - 1 // id of the previous valid record
	valid := func(off int) (Entry, int, bool) {
		e, n, err := decodeRecord(b[off:])
		if err != nil || e.ID <= prev || e.ID >= upper {
			return Entry{}, 0, false
		}
		return e, n, true
	}
	dropped := 0
	end := 0 // end of the last valid record
	for off := 0; off < len(b); {
		e, n, ok := valid(off)
		if ok {
			e.Payload = slices.Clone(e.Payload)
			s.ids = append(s.ids, e.ID)
			if !acked[e.ID] {
				o.pending[e.ID] = &item{e: e, seg: s, size: int64(n)}
				o.bytes += int64(n)
				s.live++
			}
			prev = e.ID
			off += n
			end = off
			continue
		}
		// Damage at off (== end). Find the next valid record.
		next := off + 1
		var nextID uint64
		for ; next < len(b); next++ {
			if e, _, ok := valid(next); ok {
				nextID = e.ID
				break
			}
		}
		switch {
		case next < len(b):
			dropped += max(1, int(min(nextID-prev-1, math.MaxInt32)))
		case !isLast:
			gap := uint64(1)
			if upper != math.MaxUint64 && upper-prev-1 > 1 {
				gap = upper - prev - 1
			}
			dropped += int(min(gap, math.MaxInt32))
		default:
			// Nothing valid follows in the active segment: the tail of an
			// append cut short. A record whose declared length runs past
			// the end (or a zeroed length) is torn; a complete record that
			// fails its checksum was confirmed once and is counted lost.
			if _, _, err := decodeRecord(b[off:]); errors.Is(err, errShort) || errors.Is(err, errBadLen) {
				o.rec.TornBytes = int64(len(b) - off)
			} else {
				dropped++
			}
		}
		off = next
	}
	s.size = int64(len(b))
	if isLast && end < len(b) {
		if err := truncateSync(s.path, int64(end)); err != nil {
			return 0, fmt.Errorf("truncate torn segment %s: %w", filepath.Base(s.path), err)
		}
		s.size = int64(end)
	}
	return dropped, nil
}

// Append adds an entry and returns it once it is durable (fsync'd). It
// returns ErrFull, without writing, when the entry would exceed MaxEntries
// or MaxBytes, and ErrTooLarge for an entry that can never fit. The topic
// must be non-empty. The payload is copied.
//
// If writing fails the error is returned and the entry's id is not reused;
// the entry may or may not reappear after a restart.
func (o *Outbox) Append(topic string, payload []byte, retained bool) (Entry, error) {
	if topic == "" {
		return Entry{}, fmt.Errorf("append to outbox %s: empty topic", o.dir)
	}
	if len(topic) > MaxTopic || len(payload) > MaxPayload {
		return Entry{}, fmt.Errorf("append to outbox %s: topic %d bytes, payload %d bytes (max %d, %d): %w",
			o.dir, len(topic), len(payload), MaxTopic, MaxPayload, ErrTooLarge)
	}
	size := recordSize(len(topic), len(payload))
	if size > o.lim.MaxBytes {
		return Entry{}, fmt.Errorf("append to outbox %s: entry of %d bytes exceeds MaxBytes %d: %w",
			o.dir, size, o.lim.MaxBytes, ErrTooLarge)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return Entry{}, fmt.Errorf("append to outbox %s: %w", o.dir, ErrClosed)
	}
	if len(o.pending)+1 > o.lim.MaxEntries || o.bytes+size > o.lim.MaxBytes {
		return Entry{}, fmt.Errorf("append to outbox %s: %d entries, %d bytes pending: %w",
			o.dir, len(o.pending), o.bytes, ErrFull)
	}
	act := o.segs[len(o.segs)-1]
	if o.sealed || (act.size > 0 && act.size+size > o.lim.SegmentBytes) {
		if err := o.rotate(); err != nil {
			return Entry{}, fmt.Errorf("append to outbox %s: %w", o.dir, err)
		}
		act = o.segs[len(o.segs)-1]
	}

	e := Entry{ID: o.nextID, Topic: topic, Payload: slices.Clone(payload), Retained: retained}
	o.buf = appendRecord(o.buf[:0], e)
	_, err := o.active.Write(o.buf)
	if err == nil {
		err = o.active.Sync()
	}
	if err != nil {
		// The record may be partly on disk. Never reuse its id, try to cut it
		// off, and move on to a fresh segment next time.
		o.nextID++
		o.sealed = true
		_ = o.active.Truncate(act.size)
		return Entry{}, fmt.Errorf("append to outbox %s: write %s: %w", o.dir, filepath.Base(act.path), err)
	}
	o.nextID++
	act.size += size
	act.ids = append(act.ids, e.ID)
	act.live++
	o.pending[e.ID] = &item{e: e, seg: act, size: size}
	o.bytes += size
	return cloneEntry(e), nil
}

// Ack marks the entry acknowledged and durable-removes it. Unknown and
// already acknowledged ids are ignored (nil). On error the entry stays pending.
func (o *Outbox) Ack(id uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("ack %d in outbox %s: %w", id, o.dir, ErrClosed)
	}
	it, ok := o.pending[id]
	if !ok {
		return nil
	}
	o.buf = appendAck(o.buf[:0], id)
	_, err := o.acks.Write(o.buf)
	if err == nil {
		err = o.acks.Sync()
	}
	if err != nil {
		_ = o.acks.Truncate(o.acksSize)
		return fmt.Errorf("ack %d in outbox %s: write ack file: %w", id, o.dir, err)
	}
	o.acksSize += ackSize
	delete(o.pending, id)
	o.bytes -= it.size
	it.seg.live--
	if it.seg.live == 0 && it.seg != o.segs[len(o.segs)-1] {
		if o.compact() {
			o.rewriteAcks()
		}
	}
	return nil
}

// Pending returns copies of the unacknowledged entries in append order.
func (o *Outbox) Pending() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(o.pending))
	for _, s := range o.segs {
		if s.live == 0 {
			continue
		}
		for _, id := range s.ids {
			if it, ok := o.pending[id]; ok {
				out = append(out, cloneEntry(it.e))
			}
		}
	}
	return out
}

// Len returns the number of unacknowledged entries.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// Bytes returns the encoded size of the unacknowledged entries (topic,
// payload and 19 bytes of framing each), the quantity Limits.MaxBytes bounds.
func (o *Outbox) Bytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}

// Recovered reports the damage Open found. It does not change afterwards.
func (o *Outbox) Recovered() Recovery { return o.rec }

// Dir returns the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Close releases the files and the directory lock. Later calls return nil;
// other methods return ErrClosed (Pending, Len and Bytes keep answering from
// memory).
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	if err := o.closeFiles(); err != nil {
		return fmt.Errorf("close outbox %s: %w", o.dir, err)
	}
	return nil
}

func (o *Outbox) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{o.active, o.acks, o.lock} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	o.active, o.acks, o.lock = nil, nil, nil
	return errors.Join(errs...)
}

// rotate starts a new active segment named after the next id and deletes the
// old one if it holds nothing pending.
func (o *Outbox) rotate() error {
	old := o.active
	if last := o.segs[len(o.segs)-1]; last.base >= o.nextID {
		o.nextID = last.base + 1 // never two segments with one name
	}
	if err := o.createSegment(); err != nil {
		return err
	}
	_ = old.Close()
	o.sealed = false
	if o.compact() {
		o.rewriteAcks()
	}
	return nil
}

// createSegment creates and activates an empty segment for o.nextID.
func (o *Outbox) createSegment() error {
	name := fmt.Sprintf("%s%020d%s", segPre, o.nextID, segExt)
	path := filepath.Join(o.dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(o.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("create segment %s: %w", name, err)
	}
	o.segs = append(o.segs, &segment{base: o.nextID, path: path})
	o.active = f
	return nil
}

// compact deletes inactive segments with nothing pending and reports whether
// it deleted any. Failures are left for the next attempt: the segments stay
// listed and their acks stay on disk, so nothing is lost or resurrected.
func (o *Outbox) compact() bool {
	keep := o.segs[:0:0]
	deleted := false
	for i, s := range o.segs {
		if s.live == 0 && i < len(o.segs)-1 {
			if err := os.Remove(s.path); err == nil || errors.Is(err, fs.ErrNotExist) {
				deleted = true
				continue
			}
		}
		keep = append(keep, s)
	}
	o.segs = keep
	if deleted && syncDir(o.dir) != nil {
		// Deletions may not be durable yet; keep the acks that cover them.
		return false
	}
	return deleted
}

// rewriteAcks replaces the ack file with acks of the live segments only. It
// runs after segments were durably deleted. On failure the old file stays;
// it is only larger than needed.
func (o *Outbox) rewriteAcks() {
	var b []byte
	for _, s := range o.segs {
		for _, id := range s.ids {
			if _, ok := o.pending[id]; !ok {
				b = appendAck(b, id)
			}
		}
	}
	tmp := filepath.Join(o.dir, ackTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	if _, err := f.Write(b); err != nil || f.Sync() != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, ackName)); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return
	}
	_ = syncDir(o.dir) // the rename is atomic; if not yet durable the old file is still correct
	_ = o.acks.Close()
	o.acks = f
	o.acksSize = int64(len(b))
}

func cloneEntry(e Entry) Entry {
	e.Payload = slices.Clone(e.Payload)
	return e
}

func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, segPre)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, segExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || base == 0 {
		return 0, false
	}
	return base, true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
