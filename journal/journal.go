package journal

import (
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
	"github.com/roomd/roomd/wallclock"
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
	// wallclock.Now. The daemon passes its time axis.
	Now    func() time.Time
	Logger *slog.Logger
	// BootID identifies the running system's boot; "" reads Linux's
	// /proc/sys/kernel/random/boot_id. Tests that play a power cut give
	// the restart another one.
	BootID string
	// Stats, if set, receives the syncs' measurements (shared with a
	// metrics exporter); nil: the journal keeps its own (SyncStats).
	Stats *SyncStats
	// MarkDir is a directory in memory (it must not be on the journal's
	// disk) where the journal also leaves its refusal mark, for a disk that
	// refuses even the head (read-only): a restart in the same boot finds
	// it there. "" means /dev/shm, or the temp directory without it.
	MarkDir string
}

func (o *Options) defaults() {
	if o.FS == nil {
		o.FS = OS{}
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes <= 0 {
		// Compaction deletes whole segments: a segment of at most an eighth
		// of MaxBytes keeps the journal within MaxBytes plus one segment.
		o.SegmentBytes = min(DefaultSegmentBytes, max(o.MaxBytes/8, 16<<10))
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
		o.Now = wallclock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stats == nil {
		o.Stats = &SyncStats{}
	}
	if o.MarkDir == "" {
		o.MarkDir = os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			o.MarkDir = "/dev/shm"
		}
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
	// used: an entry or the blob was ever given to this journal since it
	// opened. A new journal closed unused leaves no head behind (Close).
	used bool

	// The syncer's side (sync.go): what was written and not yet synced.
	syncMu      sync.Mutex // serialises syncs
	dirty       map[*segment]File
	dirtyDir    bool   // a segment was created since the directory's last sync
	written     uint64 // highest LSN written to a segment
	synced      uint64 // highest LSN synced
	syncErr     error  // the last sync failed
	syncFailed  bool   // a sync ever failed since Open
	markClearAt uint64 // the refusal mark clears once this LSN is synced
	seqMax      uint64 // highest seq appended
	boot        uint64
	stats       *SyncStats
	syncKick    chan struct{}
	headKick    chan struct{}
	health      chan struct{}
	syncDone    chan struct{}
	dirID       FileID // the directory's identity at Open (watch.go)
	copyBytes   int64  // set-aside copies kept
	tailStuck   bool   // the last segment's torn end could not be cut

	notices []string

	stop chan struct{}
	done chan struct{}
}

// Open opens the journal in dir, creating it if missing, and recovers it.
// Damage is repaired and reported in Recovered, never returned as an error;
// a journal that cannot be written opens anyway (Recovered().WriteErr) and
// keeps its entries in memory. Errors mean the journal cannot be used at all:
// another process holds it (ErrLocked), or dir cannot be read.
func Open(dir string, opt Options) (*Journal, error) {
	start := wallclock.Now()
	opt.defaults()
	j := &Journal{dir: dir, fsys: opt.FS, opt: opt, log: opt.Logger, cache: map[uint64]*Entry{},
		notify: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		dirty: map[*segment]File{}, stats: opt.Stats, boot: bootID(opt.BootID),
		syncKick: make(chan struct{}, 1), headKick: make(chan struct{}, 1), health: make(chan struct{}),
		syncDone: make(chan struct{})}
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
	j.rec.Took = wallclock.Since(start)
	go j.background()
	go j.syncer()
	return j, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

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

// Done returns a channel closed when the journal is closed.
func (j *Journal) Done() <-chan struct{} { return j.stop }

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
	// The syncer is not waited for: a process that dies leaves its sync
	// wherever it was. The lock goes at once (a restart may open the
	// directory); the files are closed once the syncer let go of them.
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.lock.Close()
	close(j.notify)
	close(j.health)
	segs, head := slices.Clone(j.segs), j.head
	go func() {
		<-j.syncDone
		j.mu.Lock()
		defer j.mu.Unlock()
		for _, s := range segs {
			if s.r != nil {
				_ = s.r.Close()
				s.r = nil
			}
		}
		if head != nil {
			_ = head.close()
		}
	}()
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
	<-j.syncDone

	var errs []error
	serr := j.syncOnce()
	if serr != nil {
		errs = append(errs, serr)
	}
	j.mu.Lock()
	if serr == nil && len(j.backlog) == 0 && j.degraded == nil && !j.syncFailed {
		// Everything given to the journal is durable: the next start
		// needs no reservation floor.
		j.want.flags |= headClean
		j.want.degradedFrom = 0
		j.clearMark()
		j.want.reserved = j.seqMax
		j.headDirty = true
	}
	j.mu.Unlock()
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
	if j.rec.Fresh && !j.used && len(errs) == 0 {
		// A new journal that never got an entry (a function test refused
		// or stopped on a new room) leaves nothing: with its head, the
		// next open would find a journal without entries, which reads as
		// loss. It is removed while the lock is still held.
		if err := j.fsys.Remove(join(j.dir, headName)); err == nil {
			_ = j.fsys.SyncDir(j.dir)
		} else {
			j.log.Warn("journal: an unused new journal's head could not be removed", "err", err)
		}
	}
	if err := j.lock.Close(); err != nil {
		errs = append(errs, err)
	}
	close(j.notify)
	close(j.health)
	return errors.Join(errs...)
}
