package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
)

// Defaults of Options.
const (
	DefaultSegmentBytes    = 1 << 20
	DefaultMaxBytes        = 64 << 20
	DefaultRetention       = 24 * time.Hour
	DefaultMaxBacklog      = 10000
	DefaultMaxBacklogBytes = 16 << 20
	DefaultCache           = 512
	// HeadEvery is how often, at most, the head file (acknowledgement
	// position, highest LSN, the daemon's blob) is written while it changes.
	// A message acknowledged longer than this before a crash is not
	// published again.
	HeadEvery = time.Second
)

const (
	segPrefix  = "seg-"
	segSuffix  = ".log"
	tmpSuffix  = ".tmp"
	damagedTag = ".damaged-"
)

// Options configure Open. Zero fields take the defaults.
type Options struct {
	// FS is the file system; nil means OS.
	FS FS
	// SegmentBytes is the size at which the active segment is closed and a
	// new one begins with a checkpoint of the latest snapshot.
	SegmentBytes int64
	// MaxBytes bounds the journal on disk. Above it, acknowledged segments
	// are deleted even inside the retention (the replay and idempotency
	// windows shrink); unacknowledged entries are never deleted, and
	// OverLimit reports them.
	MaxBytes int64
	// Retention is how long acknowledged entries are kept, for replay and
	// for answering redelivered commands.
	Retention time.Duration
	// MaxBacklog and MaxBacklogBytes bound the entries kept in memory while
	// the disk refuses them (full, read-only, failing).
	MaxBacklog      int
	MaxBacklogBytes int64
	// Cache is how many decoded entries are kept in memory for readers.
	Cache int
	// Now is the time used to age entries for the retention; nil means
	// time.Now. The daemon passes its time axis.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.FS == nil {
		o.FS = OS{}
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.MaxBacklogBytes <= 0 {
		o.MaxBacklogBytes = DefaultMaxBacklogBytes
	}
	if o.Cache <= 0 {
		o.Cache = DefaultCache
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Errors of readers.
var (
	// ErrCompacted: the entry was deleted by compaction (older than the
	// retention, or removed to stay under MaxBytes).
	ErrCompacted = errors.New("journal entry compacted away")
	// ErrLost: the entry was lost (damage on disk, or dropped from the
	// in-memory backlog while the disk refused it).
	ErrLost = errors.New("journal entry lost")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("journal closed")
)

// DiskError is what Append returns when the disk refused the entries: they
// are kept in memory (the backlog) under a new epoch and are published from
// there; nothing is lost unless Dropped says so.
type DiskError struct {
	Err error
	// Backlog is how many entries wait in memory for the disk.
	Backlog int
	// Dropped is how many of the oldest backlog entries were dropped, in
	// total, because the backlog was above its bounds.
	Dropped int
}

func (e *DiskError) Error() string {
	s := fmt.Sprintf("journal: entries kept in memory (%d waiting): %v", e.Backlog, e.Err)
	if e.Dropped > 0 {
		s += fmt.Sprintf("; %d dropped above the memory bound", e.Dropped)
	}
	return s
}

func (e *DiskError) Unwrap() error { return e.Err }

// Recovery reports what Open found and did.
type Recovery struct {
	// Fresh: there was no journal; a new one begins (a new epoch).
	Fresh bool
	// NewEpoch: the journal could not prove which seqs were handed out
	// after its latest snapshot (damage or loss after it), so records
	// continue in a new epoch. Reason says why.
	NewEpoch bool
	Reason   string
	// Entries is the number of entries found intact.
	Entries int
	// TornBytes is the size of the incomplete entry removed from the end:
	// a write cut short, never acknowledged, never published.
	TornBytes int64
	// Lost is a lower bound on entries lost to damage.
	Lost int
	// Damage describes each damaged region, for the log and the alert.
	Damage []string
	// SetAside lists damaged files kept for examination.
	SetAside []string
	// HeadDamaged: both slots of the head file were damaged; entries are
	// published again from the oldest one kept.
	HeadDamaged bool
	// WriteErr is why the journal cannot be written at all (for example a
	// read-only state directory); nil when it can. Appends then keep entries
	// in memory, under a new epoch.
	WriteErr error
	// Took is how long recovery took.
	Took time.Duration
}

// Damaged reports whether anything was lost or set aside.
func (r Recovery) Damaged() bool { return r.Lost > 0 || len(r.Damage) > 0 }

type segment struct {
	first uint64 // LSN in the file name
	path  string
	size  int64
	r     File // read handle, opened lazily (the active segment's write handle)
}

// ref locates one entry on disk.
type ref struct {
	seg  *segment
	off  int64
	size int
	hdr  header
}

// Journal is a room's append-only journal. One goroutine appends (the
// room's loop); any number read. It is safe for concurrent use.
type Journal struct {
	dir  string
	fsys FS
	opt  Options
	log  *slog.Logger
	lock io.Closer

	headMu      sync.Mutex // serialises head writes and deletions (maintain)
	mu          sync.Mutex
	closed      bool
	segs        []*segment // by first LSN; the last one is active
	active      File       // write handle of the active segment; nil if none can be written
	activeSize  int64
	idx         []ref // entries on disk, by LSN
	nextLSN     uint64
	epoch       Epoch
	backlog     []*Entry // appended, visible, not on disk
	backBytes   int64
	degraded    error
	dropped     int
	lostBelow   uint64 // backlog entries below this LSN were dropped
	latest      *controller.Snapshot
	latestAt    time.Time
	cache       map[uint64]*Entry
	cacheQ      []uint64
	acked       Pos
	head        *headFile
	want        headState // the head as it should be written
	headDirty   bool
	notify      chan struct{}
	rec         Recovery
	buf         []byte
	tailDamaged bool

	stop chan struct{}
	done chan struct{}
}

// Open opens the journal in dir, creating it if missing, and recovers it.
// Damage is repaired and reported in Recovered, never returned as an error;
// a journal that cannot be written opens anyway (Recovered().WriteErr) and
// keeps its entries in memory. Errors mean the journal cannot be used at all:
// another process holds it (ErrLocked), or dir cannot be read.
func Open(dir string, opt Options) (*Journal, error) {
	start := time.Now()
	opt.defaults()
	j := &Journal{dir: dir, fsys: opt.FS, opt: opt, log: opt.Logger, cache: map[uint64]*Entry{},
		notify: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	mkErr := j.fsys.MkdirAll(dir, 0o700)
	lock, err := j.fsys.Lock(dir)
	if err != nil {
		if mkErr != nil {
			return nil, fmt.Errorf("open journal %s: %w", dir, mkErr)
		}
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	j.lock = lock
	if err := j.recover(); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	j.rec.Took = time.Since(start)
	go j.background()
	return j, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Recovered reports what Open found.
func (j *Journal) Recovered() Recovery { return j.rec }

func parseSegName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix)
	if len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil && n > 0
}

func segName(first uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// recover reads the directory into j.
func (j *Journal) recover() error {
	hs, headDamaged, err := loadHead(j.fsys, j.dir)
	if err != nil {
		return err
	}
	j.rec.HeadDamaged = headDamaged
	names, err := j.fsys.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, tmpSuffix) {
			_ = j.fsys.Remove(join(j.dir, n)) // an interrupted rewrite; the original is intact
			continue
		}
		if first, ok := parseSegName(n); ok {
			j.segs = append(j.segs, &segment{first: first, path: join(j.dir, n)})
		}
	}

	// Read every segment; note what is missing where.
	var lostAt []uint64 // LSNs after which something was lost
	scans := make([]*segScan, len(j.segs))
	prev := uint64(0)
	for i, s := range j.segs {
		if i > 0 && s.first > prev+1 && prev > 0 {
			j.damage(&lostAt, prev, int(s.first-prev-1), "entries %d to %d missing (a segment is gone)", prev+1, s.first-1)
			scans[i-1].gaps = append(scans[i-1].gaps, [2]uint64{prev + 1, s.first - 1})
		}
		scans[i] = j.scan(s, i == len(j.segs)-1, &prev, &lostAt)
	}
	if n := len(scans); n > 0 {
		last := scans[n-1]
		switch {
		case last.tailDamaged:
			j.rec.Lost += max(1, int(min(hs.hwm-min(hs.hwm, prev), 1<<30)))
			if hs.hwm > prev {
				last.gaps = append(last.gaps, [2]uint64{prev + 1, hs.hwm})
			}
		case hs.hwm > prev && !last.unreadable:
			j.damage(&lostAt, prev, int(hs.hwm-prev), "entries %d to %d missing at the end", prev+1, hs.hwm)
			last.gaps = append(last.gaps, [2]uint64{prev + 1, hs.hwm})
		}
	}
	// Repair: damaged segments are set aside and rewritten with their
	// valid entries; lost ranges are marked, so that the next start does
	// not report them again.
	for _, sc := range scans {
		j.repair(sc)
		if !sc.gone {
			j.idx = append(j.idx, sc.refs...)
		}
	}
	j.segs = slices.DeleteFunc(j.segs, func(s *segment) bool {
		for _, sc := range scans {
			if sc.seg == s && sc.gone {
				return true
			}
		}
		return false
	})
	j.rec.Entries = 0
	for _, r := range j.idx {
		if !r.hdr.has(flagLost) {
			j.rec.Entries++
		}
	}

	// The latest snapshot decides where the room resumes.
	snapLSN := uint64(0)
	for i := len(j.idx) - 1; i >= 0; i-- {
		r := j.idx[i]
		if !r.hdr.has(flagSnapshot) {
			continue
		}
		e, err := j.readRef(r)
		if err != nil || e.Snapshot == nil {
			j.damage(&lostAt, r.hdr.lsn, 1, "entry %d unreadable: %v", r.hdr.lsn, err)
			continue
		}
		j.latest, j.latestAt, snapLSN = e.Snapshot, e.At, r.hdr.lsn
		break
	}
	if n := len(j.idx); n > 0 {
		last := j.idx[n-1].hdr
		j.epoch = last.epoch
		j.nextLSN = max(last.lsn, last.lostTo) + 1
	}
	j.nextLSN = max(j.nextLSN, hs.hwm+1, hs.acked.LSN, 1)
	switch {
	case j.rec.Entries == 0 && len(scans) == 0 && hs.counter == 0:
		j.rec.Fresh = true
		j.rec.Reason = "no journal: a new one begins"
		j.epoch = NewEpoch()
	case j.rec.Entries == 0:
		j.rec.NewEpoch = true
		j.rec.Reason = "the journal holds no readable entry"
		j.epoch = NewEpoch()
	case slices.ContainsFunc(lostAt, func(l uint64) bool { return l >= snapLSN }):
		j.rec.NewEpoch = true
		j.rec.Reason = "entries after the latest snapshot were lost, so the seqs handed out since cannot be proved"
		j.epoch = NewEpoch()
	}
	j.acked = hs.acked
	if first := j.firstLSN(); j.acked.LSN < first {
		j.acked = Pos{LSN: first}
	}
	j.want = headState{acked: j.acked, hwm: j.nextLSN - 1, epoch: j.epoch, blob: hs.blob}

	// Write side: the active segment and the head file.
	if n := len(j.segs); n > 0 {
		act := j.segs[n-1]
		f, err := j.fsys.OpenFile(act.path, os.O_RDWR, 0)
		if err != nil {
			j.rec.WriteErr = fmt.Errorf("open %s for writing: %w", act.path, err)
		} else {
			j.active, j.activeSize = f, act.size
			if act.r != nil {
				_ = act.r.Close()
			}
			act.r = f
		}
	}
	head, err := openHead(j.fsys, j.dir, j.want)
	j.head = head
	if err != nil && j.rec.WriteErr == nil {
		j.rec.WriteErr = err
	}
	if j.rec.WriteErr != nil {
		j.degraded = j.rec.WriteErr
		if !j.rec.Fresh && !j.rec.NewEpoch {
			// Whatever is appended now can only live in memory: give it a
			// seq space of its own (see Append).
			j.epoch = NewEpoch()
		}
	}
	return nil
}

// segScan is what recovery learnt of one segment.
type segScan struct {
	seg         *segment
	data        []byte      // the file as read
	refs        []ref       // valid entries, offsets into data
	gaps        [][2]uint64 // LSN ranges lost in or right after this segment
	damaged     bool        // bytes that are not valid entries (beyond a torn end)
	tailDamaged bool        // the damage reaches the end of the last segment
	unreadable  bool
	gone        bool // nothing of it is left
}

// damage records lost entries at LSN position at.
func (j *Journal) damage(lostAt *[]uint64, at uint64, lost int, format string, args ...any) {
	*lostAt = append(*lostAt, at)
	j.rec.Lost += lost
	j.rec.Damage = append(j.rec.Damage, fmt.Sprintf(format, args...))
}

// scan reads and indexes segment s. prev is the LSN of the last valid entry
// before it, and is advanced.
func (j *Journal) scan(s *segment, isLast bool, prev *uint64, lostAt *[]uint64) *segScan {
	sc := &segScan{seg: s}
	b, err := readFile(j.fsys, s.path)
	if err != nil {
		j.damage(lostAt, *prev, 1, "segment %s unreadable: %v", s.path, err)
		sc.unreadable, sc.damaged = true, true
		return sc
	}
	sc.data = b
	valid := func(off int) (header, int, bool) {
		h, js, n, err := readFrame(b[off:])
		if err != nil || h.lsn <= *prev || h.lsn < s.first {
			return header{}, 0, false
		}
		if h.has(flagLost) {
			var l struct {
				To uint64 `json:"lost_to"`
			}
			if json.Unmarshal(js, &l) != nil || l.To < h.lsn {
				return header{}, 0, false
			}
			h.lostTo = l.To
		}
		return h, n, true
	}
	end := 0
	for off := 0; off < len(b); {
		if h, n, ok := valid(off); ok {
			if *prev > 0 && h.lsn > *prev+1 {
				j.damage(lostAt, *prev, int(h.lsn-*prev-1), "%s: entries %d to %d missing", s.path, *prev+1, h.lsn-1)
				sc.gaps = append(sc.gaps, [2]uint64{*prev + 1, h.lsn - 1})
			}
			sc.refs = append(sc.refs, ref{seg: s, off: int64(off), size: n, hdr: h})
			*prev = max(h.lsn, h.lostTo)
			off += n
			end = off
			continue
		}
		next := off + 1
		for ; next < len(b); next++ {
			if _, _, ok := valid(next); ok {
				break
			}
		}
		if next >= len(b) && isLast {
			// Nothing valid follows in the active segment. A frame that runs
			// past the end, or a zero length, is a write cut short: it was
			// never synced, never published. Anything else was complete once.
			if _, _, _, err := readFrame(b[off:]); errors.Is(err, errShort) || errors.Is(err, errBadLen) {
				j.rec.TornBytes = int64(len(b) - off)
				break
			}
			sc.tailDamaged = true
		}
		// Entries lost here are counted by the LSN gap to the next valid
		// entry (here, in a later segment, or in the head's highest LSN).
		j.damage(lostAt, *prev, 0, "%s: %d damaged bytes at offset %d", s.path, next-off, off)
		sc.damaged = true
		off = next
	}
	s.size = int64(end)
	if !sc.damaged && end < len(b) {
		if err := j.truncate(s.path, int64(end)); err != nil {
			j.rec.WriteErr = fmt.Errorf("cut the torn end of %s: %w", s.path, err)
			s.size = int64(len(b))
		}
	}
	return sc
}

// repair sets a damaged segment aside and writes its valid entries back
// under its name, with a marker for every lost LSN range in or right after
// it; an intact segment only gets the markers appended.
func (j *Journal) repair(sc *segScan) {
	if sc.unreadable {
		to, err := j.setAside(sc.seg.path)
		if err == nil {
			j.rec.SetAside = append(j.rec.SetAside, to)
		}
		sc.gone = true
		return
	}
	if !sc.damaged && len(sc.gaps) == 0 {
		return
	}
	marker := func(g [2]uint64) []byte {
		ep, at := Epoch(1), time.Unix(0, 0)
		for _, r := range sc.refs {
			if r.hdr.lsn < g[0] {
				ep, at = r.hdr.epoch, r.hdr.at
			}
		}
		if ep == 1 && len(sc.refs) > 0 {
			ep, at = sc.refs[0].hdr.epoch, sc.refs[0].hdr.at
		}
		f, _, _ := appendFrame(nil, &Entry{LSN: g[0], Epoch: ep, At: at, lostTo: g[1]})
		return f
	}
	// The new content, in LSN order.
	type piece struct {
		lsn  uint64
		data []byte
		hdr  header
	}
	var pieces []piece
	for _, r := range sc.refs {
		pieces = append(pieces, piece{lsn: r.hdr.lsn, data: sc.data[r.off : r.off+int64(r.size)], hdr: r.hdr})
	}
	for _, g := range sc.gaps {
		f := marker(g)
		h, _, _, _ := readFrame(f)
		h.lostTo = g[1]
		pieces = append(pieces, piece{lsn: g[0], data: f, hdr: h})
	}
	slices.SortFunc(pieces, func(a, b piece) int { return cmpU64(a.lsn, b.lsn) })
	var content []byte
	var refs []ref
	for _, p := range pieces {
		refs = append(refs, ref{seg: sc.seg, off: int64(len(content)), size: len(p.data), hdr: p.hdr})
		content = append(content, p.data...)
	}
	if sc.damaged {
		to, err := j.setAside(sc.seg.path)
		if err != nil {
			j.log.Error("journal: cannot set a damaged segment aside; reading what is valid in place", "path", sc.seg.path, "err", err)
			return
		}
		if err := j.writeWhole(sc.seg.path, content); err != nil {
			j.log.Error("journal: cannot rewrite the valid part of a damaged segment; reading it from the set-aside copy", "path", sc.seg.path, "err", err)
			sc.seg.path = to
			return
		}
		j.rec.SetAside = append(j.rec.SetAside, to)
	} else {
		// Intact: append the markers in place (they sort after its entries).
		tail := content[sc.seg.size:]
		if err := j.appendInPlace(sc.seg.path, sc.seg.size, tail); err != nil {
			j.log.Warn("journal: cannot mark lost entries; they will be reported again at the next start", "path", sc.seg.path, "err", err)
			return
		}
	}
	_ = j.fsys.SyncDir(j.dir)
	sc.refs = refs
	sc.seg.size = int64(len(content))
}

func (j *Journal) setAside(path string) (string, error) {
	to := path + damagedTag + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := j.fsys.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}

func (j *Journal) appendInPlace(path string, at int64, data []byte) error {
	return j.edit(path, func(f File) error {
		_, err := f.WriteAt(data, at)
		return err
	})
}

// edit opens an existing file, changes it with do, syncs and closes it.
func (j *Journal) edit(path string, do func(File) error) error {
	f, err := j.fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := do(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
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

func (j *Journal) writeWhole(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := j.fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		_ = j.fsys.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = j.fsys.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = j.fsys.Remove(tmp)
		return err
	}
	return j.fsys.Rename(tmp, path)
}

func (j *Journal) truncate(path string, size int64) error {
	return j.edit(path, func(f File) error { return f.Truncate(size) })
}

// Append adds the entries as one step (or one group of steps): it assigns
// their LSN and epoch, writes them and syncs once. Only then are they visible
// to readers. When the disk refuses them (full, read-only, failing) they are
// kept in memory, visible at once, under a new epoch (their seqs may never
// be written, so they must not share an epoch with entries that later
// recover from disk), and Append returns a *DiskError; every later Append,
// including Append with no entries, first tries to write them. Entries are
// modified in place (LSN, Epoch).
func (j *Journal) Append(es ...*Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if len(es) == 0 && len(j.backlog) == 0 {
		return nil
	}
	var list []*Entry
	if len(j.backlog) == 0 && j.active != nil && j.activeSize >= j.opt.SegmentBytes && j.latest != nil {
		list = append(list, &Entry{Checkpoint: true, At: j.latestAt, Snapshot: j.latest})
	}
	list = append(list, es...)
	for _, e := range list {
		e.LSN = j.nextLSN
		e.Epoch = j.epoch
		j.nextLSN++
		if e.Snapshot != nil && !e.Checkpoint {
			j.latest, j.latestAt = e.Snapshot, e.At
		}
	}
	pending := append(slices.Clone(j.backlog), list...)
	err := j.write(pending)
	if err == nil {
		if j.degraded != nil {
			j.log.Info("journal: the disk takes entries again", "written", len(pending))
		}
		j.backlog, j.backBytes, j.degraded = nil, 0, nil
		for _, e := range list {
			j.remember(e)
		}
		j.want.hwm = j.nextLSN - 1
		j.want.epoch = j.epoch
		j.headDirty = true
		j.wake()
		return nil
	}
	if j.degraded == nil {
		// The first refusal: what follows lives in memory for now, under a
		// seq space of its own.
		j.epoch = NewEpoch()
		for _, e := range list {
			e.Epoch = j.epoch
		}
		j.log.Error("journal: the disk refuses entries; keeping them in memory under a new epoch", "err", err, "epoch", j.epoch)
	}
	j.degraded = err
	for _, e := range list {
		j.backlog = append(j.backlog, e)
		j.backBytes += approxSize(e)
		j.remember(e)
	}
	for len(j.backlog) > 1 && (len(j.backlog) > j.opt.MaxBacklog || j.backBytes > j.opt.MaxBacklogBytes) {
		old := j.backlog[0]
		j.backlog = j.backlog[1:]
		j.backBytes -= approxSize(old)
		j.dropped++
		j.lostBelow = old.LSN + 1
		j.forget(old.LSN)
	}
	j.wake()
	return &DiskError{Err: err, Backlog: len(j.backlog), Dropped: j.dropped}
}

func approxSize(e *Entry) int64 {
	n := int64(entryOverhead + 256*len(e.Records) + 128*len(e.Replies))
	if e.Snapshot != nil {
		n += 2048
	}
	for _, m := range e.Messages {
		n += int64(len(m.Payload) + len(m.Topic))
	}
	return n
}

// write puts list on disk, synced, and indexes it. A checkpoint first in
// the list opens a new segment. On failure nothing is indexed and the
// active segment is cut back to its previous size.
func (j *Journal) write(list []*Entry) error {
	j.buf = j.buf[:0]
	sizes := make([]int, len(list))
	hdrs := make([]header, len(list))
	for i, e := range list {
		n := len(j.buf)
		var err error
		if j.buf, hdrs[i], err = appendFrame(j.buf, e); err != nil {
			return err
		}
		sizes[i] = len(j.buf) - n
	}
	newSeg := j.active == nil || list[0].Checkpoint
	var f File
	var seg *segment
	base := j.activeSize
	if newSeg {
		seg = &segment{first: list[0].LSN, path: join(j.dir, segName(list[0].LSN))}
		var err error
		if f, err = j.fsys.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return fmt.Errorf("create %s: %w", seg.path, err)
		}
		base = 0
	} else {
		f, seg = j.active, j.segs[len(j.segs)-1]
	}
	fail := func(err error) error {
		if newSeg {
			_ = f.Close()
			_ = j.fsys.Remove(seg.path)
		} else {
			_ = f.Truncate(base)
		}
		return err
	}
	if _, err := f.WriteAt(j.buf, base); err != nil {
		return fail(fmt.Errorf("write %s: %w", seg.path, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", seg.path, err))
	}
	if newSeg {
		if err := j.fsys.SyncDir(j.dir); err != nil {
			return fail(fmt.Errorf("sync %s: %w", j.dir, err))
		}
		j.segs = append(j.segs, seg)
		j.active = f
		seg.r = f
	}
	off := base
	for i := range list {
		j.idx = append(j.idx, ref{seg: seg, off: off, size: sizes[i], hdr: hdrs[i]})
		off += int64(sizes[i])
	}
	j.activeSize = off
	seg.size = off
	return nil
}

// remember keeps a decoded entry for readers, bounded.
func (j *Journal) remember(e *Entry) {
	if _, ok := j.cache[e.LSN]; ok {
		return
	}
	j.cache[e.LSN] = e
	j.cacheQ = append(j.cacheQ, e.LSN)
	for len(j.cacheQ) > j.opt.Cache {
		old := j.cacheQ[0]
		j.cacheQ = j.cacheQ[1:]
		if !j.inBacklog(old) {
			delete(j.cache, old)
		}
	}
}

func (j *Journal) forget(lsn uint64) { delete(j.cache, lsn) }

func (j *Journal) inBacklog(lsn uint64) bool {
	return len(j.backlog) > 0 && lsn >= j.backlog[0].LSN
}

// wake tells readers that entries became visible.
func (j *Journal) wake() {
	close(j.notify)
	j.notify = make(chan struct{})
}

// Done returns a channel closed when the journal is closed.
func (j *Journal) Done() <-chan struct{} { return j.stop }

// Changed returns a channel closed when entries become visible or the
// acknowledgement position moves after the call, or the journal closes.
func (j *Journal) Changed() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.notify
}

// Last returns the LSN of the newest visible entry (0 if none).
func (j *Journal) Last() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextLSN - 1
}

// First returns the LSN of the oldest entry still kept.
func (j *Journal) First() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.firstLSN()
}

func (j *Journal) firstLSN() uint64 {
	if len(j.idx) > 0 {
		return j.idx[0].hdr.lsn
	}
	if len(j.backlog) > 0 {
		return j.backlog[0].LSN
	}
	return j.nextLSN
}

// Epoch returns the epoch of the next entry.
func (j *Journal) Epoch() Epoch {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.epoch
}

// Latest returns the latest snapshot appended (or recovered) and the time of
// its step; nil when the room has none yet.
func (j *Journal) Latest() (*controller.Snapshot, time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.latest, j.latestAt
}

// Degraded returns why entries wait in memory, or nil.
func (j *Journal) Degraded() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.degraded
}

// Get returns entry lsn. ErrCompacted: it was deleted by compaction;
// ErrLost: it was lost; an error wrapping fs errors: it cannot be read.
func (j *Journal) Get(lsn uint64) (*Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	if e, ok := j.cache[lsn]; ok {
		return e, nil
	}
	if lsn >= j.nextLSN || lsn == 0 {
		return nil, fmt.Errorf("journal entry %d: not written yet", lsn)
	}
	if len(j.backlog) > 0 && lsn >= j.backlog[0].LSN {
		return j.backlog[lsn-j.backlog[0].LSN], nil
	}
	i, ok := j.find(lsn)
	if !ok {
		switch {
		case lsn < j.lostBelow && (len(j.idx) == 0 || lsn > j.idx[len(j.idx)-1].hdr.lsn):
			return nil, fmt.Errorf("journal entry %d: dropped from memory: %w", lsn, ErrLost)
		case len(j.idx) == 0 || lsn < j.idx[0].hdr.lsn:
			return nil, fmt.Errorf("journal entry %d: %w", lsn, ErrCompacted)
		default:
			return nil, fmt.Errorf("journal entry %d: %w", lsn, ErrLost)
		}
	}
	if j.idx[i].hdr.has(flagLost) {
		return nil, fmt.Errorf("journal entry %d: %w", lsn, ErrLost)
	}
	e, err := j.readRef(j.idx[i])
	if err != nil {
		return nil, err
	}
	j.remember(e)
	return e, nil
}

// find returns the index in j.idx of entry lsn.
func (j *Journal) find(lsn uint64) (int, bool) {
	return slices.BinarySearchFunc(j.idx, lsn, func(r ref, l uint64) int {
		switch {
		case r.hdr.lsn < l:
			return -1
		case r.hdr.lsn > l:
			return 1
		}
		return 0
	})
}

func (j *Journal) readRef(r ref) (*Entry, error) {
	if r.seg.r == nil {
		f, err := j.fsys.OpenFile(r.seg.path, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("read journal entry %d: %w", r.hdr.lsn, err)
		}
		r.seg.r = f
	}
	b := make([]byte, r.size)
	if _, err := r.seg.r.ReadAt(b, r.off); err != nil {
		return nil, fmt.Errorf("read journal entry %d: %w", r.hdr.lsn, err)
	}
	h, js, _, err := readFrame(b)
	if err != nil {
		return nil, fmt.Errorf("read journal entry %d: %w", r.hdr.lsn, err)
	}
	return decodeEntry(h, js)
}

// SnapshotAt returns the snapshot in force after entry lsn (the latest
// entry at or before it that carries one), or nil if none is kept.
func (j *Journal) SnapshotAt(lsn uint64) *controller.Snapshot {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.snapshotBefore(lsn)
}

func (j *Journal) snapshotBefore(lsn uint64) *controller.Snapshot {
	for i := len(j.backlog) - 1; i >= 0; i-- {
		if e := j.backlog[i]; e.LSN <= lsn && e.Snapshot != nil {
			return e.Snapshot
		}
	}
	i, ok := j.find(lsn)
	if !ok {
		i-- // the entry before where lsn would be
	}
	for ; i >= 0 && i < len(j.idx); i-- {
		r := j.idx[i]
		if !r.hdr.has(flagSnapshot) {
			continue
		}
		if e, ok := j.cache[r.hdr.lsn]; ok {
			return e.Snapshot
		}
		if e, err := j.readRef(r); err == nil && e.Snapshot != nil {
			return e.Snapshot
		}
	}
	return nil
}

// SeqRange returns the first and last seq of epoch ep still kept, and false
// if none is.
func (j *Journal) SeqRange(ep Epoch) (first, last uint64, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.idx {
		if r.hdr.epoch == ep && r.hdr.seqFirst != 0 {
			first, last, ok = widen(first, last, ok, r.hdr.seqFirst)
			first, last, ok = widen(first, last, ok, r.hdr.seqLast)
		}
	}
	for _, e := range j.backlog {
		if f, l, has := e.Seqs(); has && e.Epoch == ep {
			first, last, ok = widen(first, last, ok, f)
			first, last, ok = widen(first, last, ok, l)
		}
	}
	return first, last, ok
}

// EntriesWithSeqs returns, in order, the LSNs of the entries of epoch ep
// whose records fall in [from, to].
func (j *Journal) EntriesWithSeqs(ep Epoch, from, to uint64) []uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []uint64
	for _, r := range j.idx {
		if r.hdr.epoch == ep && r.hdr.seqFirst != 0 && r.hdr.seqLast >= from && r.hdr.seqFirst <= to {
			out = append(out, r.hdr.lsn)
		}
	}
	for _, e := range j.backlog {
		if f, l, has := e.Seqs(); has && e.Epoch == ep && l >= from && f <= to {
			out = append(out, e.LSN)
		}
	}
	return out
}

// Since returns the LSNs of the entries whose step time is at or after t,
// starting one entry earlier if that entry holds the snapshot in force.
func (j *Journal) Since(t time.Time) []uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []uint64
	for _, r := range j.idx {
		if !r.hdr.at.Before(t) {
			out = append(out, r.hdr.lsn)
		}
	}
	for _, e := range j.backlog {
		if !e.At.Before(t) {
			out = append(out, e.LSN)
		}
	}
	return out
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

// Unacked returns how many entries and bytes on disk wait for the broker.
func (j *Journal) Unacked() (entries int, bytes int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.idx) - 1; i >= 0 && j.idx[i].hdr.lsn >= j.acked.LSN; i-- {
		entries++
		bytes += int64(j.idx[i].size)
	}
	return entries + len(j.backlog), bytes + j.backBytes
}

// OverLimit reports whether unacknowledged entries alone exceed MaxBytes.
func (j *Journal) OverLimit() bool {
	_, b := j.Unacked()
	return b > j.opt.MaxBytes
}

// Size returns the bytes the journal's segments take on disk.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var n int64
	for _, s := range j.segs {
		n += s.size
	}
	return n
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
	return nil
}

// Sync writes the head file now if it changed, and compacts.
func (j *Journal) Sync() error { return j.maintain() }

// background writes the head and compacts, once per HeadEvery.
func (j *Journal) background() {
	defer close(j.done)
	t := time.NewTicker(HeadEvery)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			if err := j.maintain(); err != nil {
				j.log.Warn("journal: head write failed; acknowledged messages may be published again after a restart", "err", err)
			}
		}
	}
}

// maintain writes the head if it changed and deletes segments that are no
// longer needed. The writes happen outside j.mu, so that an append never
// waits for them; only this goroutine (and Close, after it stopped) writes
// the head.
func (j *Journal) maintain() error {
	j.headMu.Lock()
	defer j.headMu.Unlock()
	j.mu.Lock()
	if j.closed && j.head == nil {
		j.mu.Unlock()
		return ErrClosed
	}
	dirty, want, head := j.headDirty, j.want, j.head
	j.headDirty = false
	gone := j.compact()
	j.mu.Unlock()

	var err error
	if dirty && head != nil && head.f != nil {
		if err = head.write(want); err != nil {
			j.mu.Lock()
			j.headDirty = true
			j.mu.Unlock()
		}
	}
	for _, s := range gone {
		if s.r != nil {
			_ = s.r.Close()
		}
		if rerr := j.fsys.Remove(s.path); rerr != nil {
			j.log.Warn("journal: cannot delete an old segment", "path", s.path, "err", rerr)
		}
	}
	if len(gone) > 0 {
		if serr := j.fsys.SyncDir(j.dir); serr != nil {
			j.log.Warn("journal: directory sync after compaction failed", "err", serr)
		}
	}
	return err
}

// compact takes out of the journal the oldest segments that are not
// active, fully acknowledged, older than the retention (or in the way of
// getting under MaxBytes), and followed by a snapshot, and returns them for
// deletion. The caller holds j.mu.
func (j *Journal) compact() []*segment {
	if len(j.segs) < 2 {
		return nil
	}
	cutoff := j.opt.Now().Add(-j.opt.Retention)
	var total int64
	for _, s := range j.segs {
		total += s.size
	}
	var gone []*segment
	for len(j.segs) > 1 {
		s := j.segs[0]
		n := 0
		for n < len(j.idx) && j.idx[n].seg == s {
			n++
		}
		if n > 0 {
			last := j.idx[n-1].hdr
			if last.lsn >= j.acked.LSN {
				break // not fully acknowledged
			}
			if !last.at.Before(cutoff) && total <= j.opt.MaxBytes {
				break
			}
			if !j.snapshotAfter(n) {
				break
			}
		}
		for _, r := range j.idx[:n] {
			delete(j.cache, r.hdr.lsn)
		}
		j.idx = slices.Clone(j.idx[n:])
		total -= s.size
		j.segs = j.segs[1:]
		gone = append(gone, s)
	}
	return gone
}

// snapshotAfter reports whether an entry from index i on carries a snapshot.
func (j *Journal) snapshotAfter(i int) bool {
	for ; i < len(j.idx); i++ {
		if j.idx[i].hdr.has(flagSnapshot) {
			return true
		}
	}
	return false
}

// Abandon releases the journal as the death of the process would: no head
// written, files and lock let go. Tests use it to see what a restart after a
// crash finds.
func (j *Journal) Abandon() {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.closed = true
	close(j.stop)
	j.mu.Unlock()
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.segs {
		if s.r != nil {
			_ = s.r.Close()
			s.r = nil
		}
	}
	if j.head != nil {
		_ = j.head.close()
	}
	_ = j.lock.Close()
	close(j.notify)
}

// Close writes the head, closes the files and releases the lock. Readers
// waiting on Changed are woken.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.stop)
	j.mu.Unlock()
	<-j.done

	var errs []error
	if err := j.maintain(); err != nil {
		errs = append(errs, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.segs {
		if s.r != nil {
			if err := s.r.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
				errs = append(errs, err)
			}
			s.r = nil
		}
	}
	j.active = nil
	if j.head != nil {
		if err := j.head.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := j.lock.Close(); err != nil {
		errs = append(errs, err)
	}
	close(j.notify)
	return errors.Join(errs...)
}
