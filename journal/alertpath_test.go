package journal

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/wallclock"
)

// gateFS holds every file sync until the test lets it through, and counts
// the syncs.
type gateFS struct {
	FS
	mu    sync.Mutex
	open  bool
	cond  *sync.Cond
	syncs int
}

func newGateFS() *gateFS {
	g := &gateFS{FS: OS{}, open: true}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gateFS) hold() { g.mu.Lock(); g.open = false; g.mu.Unlock() }
func (g *gateFS) release() {
	g.mu.Lock()
	g.open = true
	g.cond.Broadcast()
	g.mu.Unlock()
}
func (g *gateFS) count() int { g.mu.Lock(); defer g.mu.Unlock(); return g.syncs }

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gateFile{File: f, g: g}, nil
}

type gateFile struct {
	File
	g *gateFS
}

func (f gateFile) Sync() error {
	f.g.mu.Lock()
	for !f.g.open {
		f.g.cond.Wait()
	}
	f.g.syncs++
	f.g.mu.Unlock()
	return f.File.Sync()
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := wallclock.Now().Add(10 * time.Second)
	for !cond() {
		if wallclock.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

func TestAppendNeverWaitsForTheSync(t *testing.T) {
	dir := t.TempDir()
	g := newGateFS()
	j := open(t, dir, Options{FS: g})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	require.NoError(t, j.Sync())
	durable := j.Durable()
	before := g.count()

	g.hold() // the card stalls
	es := []*Entry{s.next(), s.next(), s.next()}
	for _, e := range es {
		require.NoError(t, j.Append(e), "an append returns while the sync is held")
		got, err := j.Get(e.LSN)
		require.NoError(t, err, "visible at once, to be published")
		require.Equal(t, e.LSN, got.LSN)
	}
	require.Equal(t, durable, j.Durable(), "nothing more is durable while the card stalls")
	g.release()
	waitUntil(t, "the syncer to catch up", func() bool { return j.Durable() == es[2].LSN })
	// Group commit: the three appends made behind a held sync took at most
	// two syncs (the held one, and one for what came while it was held).
	assert.LessOrEqual(t, g.count()-before, 2)
	sum := j.SyncStats().Summary()
	assert.GreaterOrEqual(t, sum.Count, uint64(2))
	assert.Equal(t, sum.Count, sum.Buckets[len(sum.Buckets)-1])
}

func TestOneWriteOnTheAppendPath(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{FS: OS{}}
	g := newGateFS()
	g.FS = ffs
	j := open(t, dir, Options{FS: g})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first)) // creates the first segment
	require.NoError(t, j.Sync())
	g.hold()
	ffs.mu.Lock()
	before := len(ffs.ops)
	ffs.mu.Unlock()
	require.NoError(t, j.Append(s.next(), s.next(), s.next()))
	ffs.mu.Lock()
	ops := slices.Clone(ffs.ops[before:])
	ffs.mu.Unlock()
	require.Equal(t, []string{"writeat"}, ops, "three steps appended together cost one write and no sync on the path")
	g.release()
}

// TestKillKeepsEverythingWritten: a process that dies after Append leaves
// its entries in the files (the kernel has them): the restart in the same
// boot finds them all, in the same epoch, and needs no floor.
func TestKillKeepsEverythingWritten(t *testing.T) {
	dir := t.TempDir()
	g := newGateFS()
	j, err := Open(dir, Options{FS: g, BootID: "boot-1"})
	require.NoError(t, err)
	ep := j.Epoch()
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	require.NoError(t, j.Sync())
	g.hold()
	es := fill(t, j, s, 5)
	j.Abandon()
	g.release()

	j2 := open(t, dir, Options{BootID: "boot-1"})
	rec := j2.Recovered()
	require.False(t, rec.Damaged(), "%+v", rec)
	require.False(t, rec.NewEpoch)
	require.Equal(t, ep, j2.Epoch())
	require.Equal(t, es[4].LSN, j2.Last())
	snap, _ := j2.Latest()
	require.NotNil(t, snap)
	require.Equal(t, s.c.Snapshot().Seq, snap.Seq)
	require.LessOrEqual(t, rec.SeqFloor, snap.Seq, "no jump in seq after a kill")
}

// TestPowerCutContinuesAboveTheReservation: the system dies with entries
// published from memory not yet synced; the restart (another boot) finds
// them missing, cannot know what consumers got, and so continues in a new
// epoch with seqs and alert numbers above the reservation.
func TestPowerCutContinuesAboveTheReservation(t *testing.T) {
	dir := t.TempDir()
	g := newGateFS()
	j, err := Open(dir, Options{FS: g, BootID: "boot-1"})
	require.NoError(t, err)
	ep := j.Epoch()
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 3)
	require.NoError(t, j.Sync())
	waitUntil(t, "the reservation in the head", func() bool {
		hs, _, err := loadHead(OS{}, dir)
		return err == nil && hs.reserved > 0
	})
	seg := segFiles(t, dir)[0]
	fi, err := os.Stat(seg)
	require.NoError(t, err)
	synced := fi.Size()
	g.hold()
	published := fill(t, j, s, 4)
	maxSeq := s.c.Snapshot().Seq
	j.Abandon()
	g.release()
	// The power cut: what was not synced never reached the card.
	require.NoError(t, os.Truncate(seg, synced))

	j2 := open(t, dir, Options{BootID: "boot-2"})
	rec := j2.Recovered()
	require.True(t, rec.NewEpoch, "%+v", rec)
	require.NotEqual(t, ep, j2.Epoch())
	require.NotEmpty(t, rec.MayHaveLost)
	require.Greater(t, rec.SeqFloor, maxSeq, "seqs and alert numbers continue above every seq that may have been published")
	require.Less(t, j2.Last(), published[0].LSN)

	// A clean stop afterwards keeps the floor: the next start continues above it.
	floor := rec.SeqFloor
	require.NoError(t, j2.Close())
	j3 := open(t, dir, Options{BootID: "boot-3"})
	assert.False(t, j3.Recovered().NewEpoch, "%+v", j3.Recovered())
	assert.GreaterOrEqual(t, j3.Recovered().SeqFloor, floor)
}

// TestNewEpochAtOpenIsDurable: an Open that chose a new epoch and died
// before its first Append leaves it in the head; the next Open keeps it
// instead of continuing the old one.
func TestNewEpochAtOpenIsDurable(t *testing.T) {
	dir := t.TempDir()
	ep := writeClosed(t, dir, 10)
	flipInLastEntry(t, dir) // the last entry: loss after the latest snapshot

	j2, err := Open(dir, Options{})
	require.NoError(t, err)
	require.True(t, j2.Recovered().NewEpoch)
	ep2 := j2.Epoch()
	require.NotEqual(t, ep, ep2)
	j2.Abandon() // dies before any Append

	j3 := open(t, dir, Options{})
	assert.Equal(t, ep2, j3.Epoch(), "the epoch chosen at the last Open stays in force")
	assert.NotEqual(t, ep, j3.Epoch())
}

// TestHeadCounterContinues: the head's counter never goes back, and a new
// head's first write does not overwrite its only valid slot.
func TestHeadCounterContinues(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	require.NoError(t, j.Sync())
	c1 := j.head.cur.counter
	require.NoError(t, j.Close())
	j2 := open(t, dir, Options{})
	assert.Greater(t, j2.head.cur.counter, c1, "Open continues the counter")
	require.NoError(t, j2.Close())

	// A new head: counter 1 in the second slot; the next write (counter 2)
	// goes to the first. Tear that write: the first state stays.
	dir2 := t.TempDir()
	h, err := openHead(OS{}, dir2, headState{acked: Pos{LSN: 7}}, 0)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir2, headName))
	require.NoError(t, err)
	st, ok := decodeHead(b[headSlot:])
	require.True(t, ok, "counter 1 sits in slot 1")
	assert.Equal(t, uint64(1), st.counter)
	require.NoError(t, h.write(headState{acked: Pos{LSN: 9}}))
	require.NoError(t, h.close())
	b, err = os.ReadFile(filepath.Join(dir2, headName))
	require.NoError(t, err)
	copy(b[10:40], make([]byte, 30)) // the write of counter 2 torn
	require.NoError(t, os.WriteFile(filepath.Join(dir2, headName), b, 0o600))
	got, damaged, err := loadHead(OS{}, dir2)
	require.NoError(t, err)
	assert.False(t, damaged)
	assert.Equal(t, Pos{LSN: 7}, got.acked)
	_ = s
}

// TestDroppedBacklogThenRecoveredDisk: the backlog dropped its oldest
// entries while the disk refused, then the disk took the rest: the gap sits
// inside the segment. Every Open after the first reports nothing new, reads
// every intact entry, and keeps the epoch.
func TestDroppedBacklogThenRecoveredDisk(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{FS: OS{}}
	j, err := Open(dir, Options{FS: ffs, MaxBacklog: 3})
	require.NoError(t, err)
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 2)
	require.NoError(t, j.Sync())
	ffs.mu.Lock()
	ffs.failOp, ffs.err = "writeat", syscall.ENOSPC // every write fails for a while
	ffs.mu.Unlock()
	for range 6 {
		_ = j.Append(s.next())
	}
	ffs.mu.Lock()
	ffs.failOp = ""
	ffs.mu.Unlock()
	require.NoError(t, j.Append(s.next()), "the disk takes the backlog again")
	last := j.Last()
	ep := j.Epoch()
	require.NoError(t, j.Close())

	j2 := open(t, dir, Options{})
	rec := j2.Recovered()
	require.Equal(t, 3, rec.Lost, "the dropped entries: %v", rec.Damage)
	intact := 0
	for lsn := j2.First(); lsn <= last; lsn++ {
		if _, err := j2.Get(lsn); err == nil {
			intact++
		} else {
			require.ErrorIs(t, err, ErrLost, "lsn %d", lsn)
		}
	}
	require.Equal(t, int(last)-3, intact)
	ep2 := j2.Epoch()
	require.NoError(t, j2.Close())
	for range 2 {
		j3 := open(t, dir, Options{})
		rec := j3.Recovered()
		require.False(t, rec.Damaged(), "reported once, then marked: %+v", rec)
		require.Equal(t, ep2, j3.Epoch(), "no new epoch at every open")
		for lsn := j3.First(); lsn <= last; lsn++ {
			if _, err := j3.Get(lsn); err != nil {
				require.ErrorIs(t, err, ErrLost)
			}
		}
		require.Equal(t, int(last)-3, j3.Recovered().Entries)
		require.NoError(t, j3.Close())
	}
	_ = ep
}

// TestGapBeforeASegmentCountedOnce: a deleted middle segment is one loss,
// marked once, in the segment before it.
func TestGapBeforeASegmentCountedOnce(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 60)
	require.NoError(t, j.Close())
	segs := segFiles(t, dir)
	require.GreaterOrEqual(t, len(segs), 4)
	a, _ := parseSegName(filepath.Base(segs[1]))
	b, _ := parseSegName(filepath.Base(segs[2]))
	require.NoError(t, os.Remove(segs[1]))

	j2 := open(t, dir, Options{SegmentBytes: 4 << 10})
	rec := j2.Recovered()
	assert.Equal(t, int(b-a), rec.Lost, "one gap, counted once: %v", rec.Damage)
	assert.Len(t, rec.Damage, 1)
	require.NoError(t, j2.Close())
	j3 := open(t, dir, Options{SegmentBytes: 4 << 10})
	assert.False(t, j3.Recovered().Damaged(), "%+v", j3.Recovered())
	require.NoError(t, j3.Close())
	// The earlier segment goes (compaction, say): the marker went with it
	// and nothing is reported as damage.
	require.NoError(t, os.Remove(segs[0]))
	j4 := open(t, dir, Options{SegmentBytes: 4 << 10})
	assert.Zero(t, j4.Recovered().Lost, "%v", j4.Recovered().Damage)
}

// TestDamagedCopiesAreBoundedAndCounted: set-aside copies count in Size,
// carry the journal's time in their name, and beyond a quarter of MaxBytes
// the oldest are deleted and reported.
func TestDamagedCopiesAreBoundedAndCounted(t *testing.T) {
	dir := t.TempDir()
	now := t0
	opt := Options{SegmentBytes: 4 << 10, MaxBytes: 64 << 10, Now: func() time.Time { return now }}
	j := open(t, dir, opt)
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 60)
	require.NoError(t, j.Close())
	segs := segFiles(t, dir)
	for i := range 8 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(segs[0])+damagedTag+
			t0.Add(time.Duration(i)*time.Hour).Format("20060102T150405.000000000Z")), make([]byte, 4<<10), 0o600))
	}
	b, err := os.ReadFile(segs[1])
	require.NoError(t, err)
	b[len(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(segs[1], b, 0o600))

	now = t0.Add(240 * time.Hour)
	j2 := open(t, dir, opt)
	rec := j2.Recovered()
	require.Len(t, rec.SetAside, 1)
	assert.Contains(t, rec.SetAside[0], now.Format("20060102T150405"), "named on the journal's clock")
	assert.NotEmpty(t, rec.DroppedCopies, "above a quarter of MaxBytes the oldest copies go")
	assert.Contains(t, rec.DroppedCopies[0], t0.Format("20060102T150405"))
	var segBytes int64
	for _, f := range segFiles(t, dir) {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		segBytes += fi.Size()
	}
	assert.Greater(t, j2.Size(), segBytes, "the copies kept count in Size")
	assert.LessOrEqual(t, j2.Size()-segBytes, int64(16<<10)+int64(len(b)))
}

// TestOrphanedCopyIsReadAsItsSegment: a damaged segment whose rewrite
// failed (a full disk) survives only as its set-aside copy; the next Open
// reads it as the segment, and nothing is lost twice.
func TestOrphanedCopyIsReadAsItsSegment(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 40)
	ep := j.Epoch()
	last := j.Last()
	require.NoError(t, j.Close())
	segs := segFiles(t, dir)
	require.NoError(t, os.Rename(segs[0], segs[0]+damagedTag+"20260301T000000.000000000Z"))

	j2 := open(t, dir, Options{SegmentBytes: 4 << 10})
	rec := j2.Recovered()
	assert.False(t, rec.Damaged(), "%+v", rec)
	assert.Equal(t, ep, j2.Epoch())
	for lsn := uint64(1); lsn <= last; lsn++ {
		_, err := j2.Get(lsn)
		require.NoError(t, err, "lsn %d", lsn)
	}
}

// TestMarkerInAnEmptySegmentTakesTheEpochBefore: a lost range marked in a
// segment that holds no entry carries the epoch of the last entry before
// it, not 1.
func TestMarkerInAnEmptySegmentTakesTheEpochBefore(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 40)
	ep := j.Epoch()
	require.NoError(t, j.Close())
	segs := segFiles(t, dir)
	last := segs[len(segs)-1]
	require.NoError(t, os.WriteFile(last, []byte{1, 2, 3}, 0o600)) // its entries gone, a torn start

	j2 := open(t, dir, Options{SegmentBytes: 4 << 10})
	require.True(t, j2.Recovered().Damaged())
	for _, r := range j2.idx {
		if r.hdr.has(flagLost) {
			assert.Equal(t, ep, r.hdr.epoch, "marker at %d", r.hdr.lsn)
			assert.False(t, r.hdr.at.Before(t0), "marker at %d", r.hdr.lsn)
		}
	}
}

// TestTornEndThatCannotBeCut: when the torn end cannot be cut, the next
// entries go to a new segment, not after the torn bytes; the next Open
// reads them all.
func TestTornEndThatCannotBeCut(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 4)
	ep := j.Epoch()
	require.NoError(t, j.Close())
	seg := segFiles(t, dir)[0]
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{200, 0, 0, 0, 1, 2}) // a frame cut short
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ffs := &faultFS{FS: OS{}, failAt: -1}
	ffs.failOp = "truncate"
	ffs.err = syscall.EIO
	j2, err := Open(dir, Options{FS: ffs})
	require.NoError(t, err)
	e := s.next()
	require.NoError(t, j2.Append(e))
	require.NoError(t, j2.Close())
	require.Len(t, segFiles(t, dir), 2, "a new segment took the entry")

	j3 := open(t, dir, Options{})
	rec := j3.Recovered()
	assert.Zero(t, rec.Lost, "%v", rec.Damage)
	assert.Equal(t, ep, j3.Epoch())
	got, err := j3.Get(e.LSN)
	require.NoError(t, err)
	assert.Equal(t, e.LSN, got.LSN)
}

// TestDeletedDirectoryIsRewritten: the journal directory deleted while the
// room runs is noticed within a head tick; what the room holds is written
// into a new one, a notice says so, and a restart continues the epoch.
func TestDeletedDirectoryIsRewritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 6)
	ep := j.Epoch()
	require.NoError(t, os.RemoveAll(dir))
	var notices []string
	start := wallclock.Now()
	waitUntil(t, "the notice", func() bool { notices = append(notices, j.Notices()...); return len(notices) > 0 })
	assert.Less(t, wallclock.Since(start), 3*HeadEvery, "noticed within seconds")
	require.Len(t, notices, 1)
	assert.Contains(t, notices[0], "deleted")
	fill(t, j, s, 2)
	seq := s.c.Snapshot().Seq
	require.NoError(t, j.Close())

	j2 := open(t, dir, Options{})
	rec := j2.Recovered()
	assert.False(t, rec.Fresh)
	assert.Equal(t, ep, j2.Epoch(), "the room continues its epoch")
	snap, _ := j2.Latest()
	require.NotNil(t, snap)
	assert.Equal(t, seq, snap.Seq)
}

func TestSyncDelayDistributions(t *testing.T) {
	d, err := ParseSyncDelay("20ms", 1)
	require.NoError(t, err)
	assert.Equal(t, 20*time.Millisecond, d.Next())
	z, err := ParseSyncDelay("0", 1)
	require.NoError(t, err)
	assert.Zero(t, z.Next())
	_, err = ParseSyncDelay("fast", 1)
	require.ErrorContains(t, err, "sdcard")
	sd, err := ParseSyncDelay("sdcard", 7)
	require.NoError(t, err)
	var st SyncStats
	stalls := 0
	for range 20000 {
		v := sd.Next()
		if v == SDCardStall {
			stalls++
			continue
		}
		st.Observe(v)
	}
	sum := st.Summary()
	assert.InDelta(t, float64(SDCardP50), float64(sum.P50), float64(SDCardP50)/5)
	assert.InDelta(t, float64(SDCardP99), float64(sum.P99), float64(SDCardP99)/4)
	assert.InDelta(t, 20000/SDCardStallEvery, stalls, 25)
	assert.True(t, strings.HasPrefix(sd.Name, "sdcard"))
}

// TestReadOnlyDiskThenKill: the disk turns read-only (every write fails,
// the head's too), the room keeps a step in memory and publishes it, and
// the process dies. The head could not carry the refusal mark; the mark in
// memory (MarkDir) does: the restart in the same boot continues in a new
// epoch above the reservation and says what it may have forgotten.
func TestReadOnlyDiskThenKill(t *testing.T) {
	dir, marks := t.TempDir(), t.TempDir()
	ffs := &faultFS{FS: OS{}}
	j, err := Open(dir, Options{FS: ffs, BootID: "boot-1", MarkDir: marks})
	require.NoError(t, err)
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 3)
	require.NoError(t, j.Sync())
	ep := j.Epoch()
	ffs.mu.Lock()
	ffs.failOp, ffs.err = "writeat", syscall.EROFS
	ffs.mu.Unlock()
	e := s.next()
	var de *DiskError
	require.ErrorAs(t, j.Append(e), &de, "the disk refuses")
	published := s.c.Snapshot().Seq
	j.Abandon()

	j2 := open(t, dir, Options{BootID: "boot-1", MarkDir: marks})
	rec := j2.Recovered()
	require.True(t, rec.NewEpoch, "%+v", rec)
	assert.NotEqual(t, ep, j2.Epoch())
	assert.NotEqual(t, e.Epoch, j2.Epoch())
	assert.NotEmpty(t, rec.MayHaveLost)
	assert.Greater(t, rec.SeqFloor, published)
	require.NoError(t, j2.Close())
	j3 := open(t, dir, Options{BootID: "boot-1", MarkDir: marks})
	assert.False(t, j3.Recovered().NewEpoch, "said once: %+v", j3.Recovered())
}

func TestProbeSyncMeasuresTheInjectedLatency(t *testing.T) {
	dir := t.TempDir()
	st, err := ProbeSync(DelayFS{FS: OS{}, Delay: func() time.Duration { return 3 * time.Millisecond }}, dir, 20)
	require.NoError(t, err)
	assert.Equal(t, uint64(20), st.Count)
	assert.GreaterOrEqual(t, st.P50, 3*time.Millisecond)
	m, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	assert.Empty(t, m, "the probe leaves nothing behind")
}
