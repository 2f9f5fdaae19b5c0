package journal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

var t0 = time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)

var testPolicy = controller.Policy{
	Name: "test", MaxDuration: 2 * time.Hour, Warnings: []time.Duration{10 * time.Minute, 2 * time.Minute},
	EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute, ReannounceAfter: 5 * time.Minute,
	LockGrace: 10 * time.Second, VacateTimeout: 10 * time.Minute,
}

// stepper drives a real controller and turns each step into a journal
// entry, as the daemon does.
type stepper struct {
	t   testing.TB
	c   *controller.Controller
	now time.Time
	n   int
}

func newStepper(t testing.TB) (*stepper, *Entry) {
	c, acts, err := controller.New(testPolicy, t0)
	require.NoError(t, err)
	s := &stepper{t: t, c: c, now: t0}
	return s, s.entry(acts)
}

func (s *stepper) entry(acts controller.Ready) *Entry {
	return EntryOf(s.c, acts)
}

// next returns the entry of a varied step: door, lock and panic changes, and
// commands with replies.
func (s *stepper) next() *Entry {
	s.n++
	s.now = s.now.Add(time.Second)
	var ev controller.Event
	switch s.n % 6 {
	case 0:
		ev = controller.Command{At: s.now, RequestID: fmt.Sprintf("r-%d", s.n), Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour, By: "guard-7"}
	case 1:
		ev = controller.InputChanged{At: s.now, Input: controller.InputDoor, Level: controller.LevelActive}
	case 2:
		ev = controller.InputChanged{At: s.now, Input: controller.InputDoor, Level: controller.LevelInactive}
	case 3:
		ev = controller.Command{At: s.now, RequestID: fmt.Sprintf("r-%d", s.n), Action: controller.ActionGetState, By: "guard-7"}
	case 4:
		ev = controller.InputChanged{At: s.now, Input: controller.InputPanic, Level: controller.LevelActive}
	default:
		ev = controller.InputChanged{At: s.now, Input: controller.InputPanic, Level: controller.LevelInactive}
	}
	return s.entry(s.c.Step(ev))
}

func open(t testing.TB, dir string, opt Options) *Journal {
	t.Helper()
	j, err := Open(dir, opt)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// fill appends n steps, one Append each, and returns the entries.
func fill(t testing.TB, j *Journal, s *stepper, n int) []*Entry {
	t.Helper()
	var out []*Entry
	for range n {
		e := s.next()
		require.NoError(t, j.Append(e))
		out = append(out, e)
	}
	return out
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	require.NoError(t, err)
	return m
}

func TestAppendGetReopen(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	rec := j.Recovered()
	require.True(t, rec.Fresh)
	ep := j.Epoch()
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	es := fill(t, j, s, 40)
	require.Equal(t, uint64(41), j.Last())
	for _, e := range append([]*Entry{first}, es...) {
		got, err := j.Get(e.LSN)
		require.NoError(t, err)
		require.Equal(t, ep, got.Epoch)
		require.Equal(t, len(e.Records), len(got.Records))
	}
	require.NoError(t, j.Close())

	j2 := open(t, dir, Options{})
	rec = j2.Recovered()
	require.False(t, rec.Fresh)
	require.False(t, rec.NewEpoch)
	require.False(t, rec.Damaged())
	require.Equal(t, 41, rec.Entries)
	require.Equal(t, ep, j2.Epoch(), "the epoch survives a clean restart")
	snap, _ := j2.Latest()
	require.NotNil(t, snap)
	require.Equal(t, s.c.Snapshot().Seq, snap.Seq)
	// Decoded from disk (not the cache) the entries are the same.
	for _, e := range es {
		got, err := j2.Get(e.LSN)
		require.NoError(t, err)
		require.Equal(t, e.At.UnixNano(), got.At.UnixNano())
		require.Len(t, got.Records, len(e.Records))
		for i := range e.Records {
			require.Equal(t, e.Records[i].Seq, got.Records[i].Seq)
			require.Equal(t, e.Records[i].Type, got.Records[i].Type)
		}
		require.Equal(t, e.Replies, got.Replies)
	}
	// LSNs continue.
	e := s.next()
	require.NoError(t, j2.Append(e))
	require.Equal(t, uint64(42), e.LSN)
}

func TestTornTailAtEveryOffset(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	es := fill(t, j, s, 5)
	ep := j.Epoch()
	require.NoError(t, j.Close())
	seg := segFiles(t, dir)[0]
	full, err := os.ReadFile(seg)
	require.NoError(t, err)
	lastStart := int(j.idx[len(j.idx)-1].off)
	lastLSN := es[len(es)-1].LSN

	for cut := lastStart; cut < len(full); cut++ {
		d := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(d, filepath.Base(seg)), full[:cut], 0o600))
		j2, err := Open(d, Options{})
		require.NoError(t, err, "cut at %d", cut)
		rec := j2.Recovered()
		require.Equal(t, int64(cut-lastStart), rec.TornBytes, "cut at %d", cut)
		require.Zero(t, rec.Lost, "cut at %d: a torn tail loses nothing that was synced", cut)
		require.False(t, rec.NewEpoch, "cut at %d", cut)
		require.Equal(t, ep, j2.Epoch(), "cut at %d", cut)
		require.Equal(t, lastLSN-1, j2.Last(), "cut at %d", cut)
		fi, err := os.Stat(filepath.Join(d, filepath.Base(seg)))
		require.NoError(t, err)
		require.Equal(t, int64(lastStart), fi.Size(), "cut at %d: the torn end is truncated", cut)
		// Appends go on after the cut, and a reopen finds them.
		e := s.next()
		require.NoError(t, j2.Append(e))
		require.Equal(t, lastLSN, e.LSN)
		require.NoError(t, j2.Close())
		j3, err := Open(d, Options{})
		require.NoError(t, err)
		require.Equal(t, lastLSN, j3.Last())
		require.Zero(t, j3.Recovered().TornBytes)
		require.NoError(t, j3.Close())
	}
}

func TestFlippedBitInAMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 60)
	ep := j.Epoch()
	last := j.Last()
	require.NoError(t, j.Close())
	segs := segFiles(t, dir)
	require.GreaterOrEqual(t, len(segs), 3, "the test needs a middle segment")
	mid := segs[len(segs)/2]
	b, err := os.ReadFile(mid)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(mid, b, 0o600))

	j2 := open(t, dir, Options{SegmentBytes: 4 << 10})
	rec := j2.Recovered()
	require.GreaterOrEqual(t, rec.Lost, 1)
	require.NotEmpty(t, rec.Damage)
	require.Len(t, rec.SetAside, 1, "the damaged segment is kept for examination")
	damaged, err := os.ReadFile(rec.SetAside[0])
	require.NoError(t, err)
	require.Equal(t, b, damaged)
	require.False(t, rec.NewEpoch, "later snapshots prove the seqs: the epoch stays")
	require.Equal(t, ep, j2.Epoch())
	require.Equal(t, last, j2.Last())
	// Every other entry reads back; the damaged one reports ErrLost.
	lost := 0
	for lsn := j2.First(); lsn <= last; lsn++ {
		if _, err := j2.Get(lsn); err != nil {
			require.ErrorIs(t, err, ErrLost)
			lost++
		}
	}
	require.Equal(t, rec.Lost, lost)
	// The repaired journal opens clean the next time.
	require.NoError(t, j2.Close())
	j3 := open(t, dir, Options{SegmentBytes: 4 << 10})
	require.False(t, j3.Recovered().Damaged(), "%v", j3.Recovered().Damage)
}

func TestDamageAfterTheLatestSnapshotStartsANewEpoch(t *testing.T) {
	dir := t.TempDir()
	ep := writeClosed(t, dir, 10)
	flipInLastEntry(t, dir) // inside the last, complete entry: it was synced, maybe published

	j2 := open(t, dir, Options{})
	rec := j2.Recovered()
	require.True(t, rec.NewEpoch, "%+v", rec)
	require.NotEqual(t, ep, j2.Epoch())
	require.GreaterOrEqual(t, rec.Lost, 1)
	snap, _ := j2.Latest()
	require.NotNil(t, snap, "the room resumes from the latest intact snapshot")
}

func TestDeletedJournalIsFreshWithANewEpoch(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 3)
	ep := j.Epoch()
	require.NoError(t, j.Close())
	require.NoError(t, os.RemoveAll(dir))
	j2 := open(t, dir, Options{})
	require.True(t, j2.Recovered().Fresh)
	require.NotEqual(t, ep, j2.Epoch())
}

func TestDeletedLastSegmentIsNoticedThroughTheHead(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 40)
	ep := j.Epoch()
	require.NoError(t, j.Close()) // writes the head: highest LSN
	segs := segFiles(t, dir)
	require.NoError(t, os.Remove(segs[len(segs)-1]))
	j2 := open(t, dir, Options{SegmentBytes: 4 << 10})
	rec := j2.Recovered()
	require.True(t, rec.NewEpoch, "%+v", rec)
	require.NotEqual(t, ep, j2.Epoch())
}

func TestHeadKeepsTheAckPosition(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 5)
	j.Ack(Pos{LSN: 4, Msg: 1})
	j.Ack(Pos{LSN: 3}) // never back
	require.NoError(t, j.Sync())
	require.NoError(t, j.SetBlob([]byte("axis")))
	require.NoError(t, j.Close())
	j2 := open(t, dir, Options{})
	require.Equal(t, Pos{LSN: 4, Msg: 1}, j2.Acked())
	require.Equal(t, []byte("axis"), j2.Blob())
	fi, err := os.Stat(filepath.Join(dir, headName))
	require.NoError(t, err)
	require.Equal(t, int64(headSize), fi.Size(), "the head is written in place at its full size")

	// Both slots damaged: the position is lost, entries are published again.
	require.NoError(t, j2.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, headName), make([]byte, headSize), 0o600))
	j3 := open(t, dir, Options{})
	require.True(t, j3.Recovered().HeadDamaged)
	require.Equal(t, Pos{LSN: 1}, j3.Acked())
}

func TestCompactionKeepsUnackedAndRecent(t *testing.T) {
	dir := t.TempDir()
	var now atomic.Int64 // the background compaction reads it
	now.Store(t0.UnixNano())
	opt := Options{SegmentBytes: 4 << 10, Retention: time.Hour, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }}
	j := open(t, dir, opt)
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 80)
	nsegs := len(segFiles(t, dir))
	require.Greater(t, nsegs, 3)

	now.Store(t0.Add(48 * time.Hour).UnixNano())
	require.NoError(t, j.Sync())
	require.Len(t, segFiles(t, dir), nsegs, "nothing acknowledged: nothing deleted")

	mid := j.Last() / 2
	j.Ack(Pos{LSN: mid})
	require.NoError(t, j.Sync())
	left := len(segFiles(t, dir))
	require.Less(t, left, nsegs)
	require.LessOrEqual(t, j.First(), mid, "no unacknowledged entry is deleted")
	_, err := j.Get(1)
	require.ErrorIs(t, err, ErrCompacted)
	for lsn := j.First(); lsn <= j.Last(); lsn++ {
		_, err := j.Get(lsn)
		require.NoError(t, err)
	}

	j.Ack(Pos{LSN: j.Last() + 1})
	require.NoError(t, j.Sync())
	require.Len(t, segFiles(t, dir), 1, "everything acknowledged and old: only the active segment stays")
	snap, _ := j.Latest()
	require.NotNil(t, snap)
	require.NoError(t, j.Close())

	// Recent entries stay inside the retention even when acknowledged.
	dir2 := t.TempDir()
	now.Store(t0.UnixNano())
	j2 := open(t, dir2, opt)
	s2, first2 := newStepper(t)
	require.NoError(t, j2.Append(first2))
	fill(t, j2, s2, 80)
	j2.Ack(Pos{LSN: j2.Last() + 1})
	require.NoError(t, j2.Sync())
	require.Equal(t, uint64(1), j2.First(), "inside the retention nothing is deleted")
}

func TestCompactionStaysUnderMaxBytes(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10, MaxBytes: 16 << 10, Now: func() time.Time { return t0 }})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 120)
	require.Greater(t, j.Size(), int64(16<<10))
	j.Ack(Pos{LSN: j.Last() + 1})
	require.NoError(t, j.Sync())
	require.LessOrEqual(t, j.Size(), int64(16<<10)+4<<10+2048, "above MaxBytes acknowledged segments go even inside the retention")
}

// TestCrashAtEveryWritePoint runs the same sequence of appends and acks
// with a crash injected at each write operation in turn (the failing write
// lands partly), then reopens the directory and checks that every entry
// whose Append returned success is there, intact, in order, in the same
// epoch, and that nothing after the crash point is half there.
// deadProcessDir is a directory that an abandoned journal's goroutines
// (a crashed process's, which nothing stops) may still write into after
// the test ends: it is removed at the end without failing the test, where
// t.TempDir's removal fails on a file created meanwhile.
func deadProcessDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "journal-dead-process-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestCrashAtEveryWritePoint(t *testing.T) {
	run := func(ffs FS, dir string) (ok []*Entry, ep Epoch, acked Pos) {
		// What the dead process's goroutines would do after the crash
		// point (a refusal mark in memory) goes to a directory the reopen
		// does not read: a dead process leaves none.
		j, err := Open(dir, Options{FS: ffs, SegmentBytes: 2 << 10, Now: func() time.Time { return t0 }, MarkDir: deadProcessDir(t)})
		if err != nil {
			return nil, 0, Pos{}
		}
		ep = j.Epoch()
		s, first := newStepper(t)
		if j.Append(first) == nil {
			ok = append(ok, first)
		}
		for i := range 12 {
			e := s.next()
			if err := j.Append(e); err != nil {
				break
			}
			ok = append(ok, e)
			if i%3 == 2 {
				j.Ack(Pos{LSN: e.LSN})
				if j.Sync() == nil {
					acked = Pos{LSN: e.LSN}
				}
			}
		}
		// A crash: no Close. Release the lock so that the directory can
		// be reopened, as the death of the process would.
		_ = j.lock.Close()
		return ok, ep, acked
	}
	// Count the write operations of a clean run.
	probe := &faultFS{FS: OS{}}
	run(probe, deadProcessDir(t))
	total := probe.writes()
	require.Greater(t, total, 20)

	for at := 1; at <= total; at++ {
		for _, part := range []string{"none", "half"} {
			dir := deadProcessDir(t)
			ffs := &faultFS{FS: OS{}, failAt: at, err: syscall.EIO, crash: true}
			if part == "half" {
				ffs.prefix = func(n int) int { return n / 2 }
			}
			ok, ep, acked := run(ffs, dir)

			j, err := Open(dir, Options{SegmentBytes: 2 << 10, Now: func() time.Time { return t0 }})
			require.NoError(t, err, "crash at write %d (%s)", at, part)
			rec := j.Recovered()
			require.Zero(t, rec.Lost, "crash at write %d (%s): %v", at, part, rec.Damage)
			if len(ok) > 0 {
				require.Equal(t, ep, j.Epoch(), "crash at write %d (%s): the epoch stays", at, part)
			}
			require.GreaterOrEqual(t, j.Last(), uint64(len(ok)), "crash at write %d (%s): every confirmed entry is there", at, part)
			for _, e := range ok {
				got, err := j.Get(e.LSN)
				require.NoError(t, err, "crash at write %d (%s)", at, part)
				require.Equal(t, len(e.Records), len(got.Records))
			}
			require.False(t, j.Acked().Less(acked), "crash at write %d (%s): an ack that was synced stays", at, part)
			if snap, _ := j.Latest(); len(ok) > 0 {
				require.NotNil(t, snap)
				for i := len(ok) - 1; i >= 0; i-- {
					if ok[i].Snapshot != nil {
						require.GreaterOrEqual(t, snap.Seq, ok[i].Snapshot.Seq)
						break
					}
				}
			}
			require.NoError(t, j.Close())
		}
	}
}

// TestDiskRefusesThenRecovers: an error at each write point, the disk
// working again afterwards. Nothing accepted is lost, entries appended while
// the disk refused them are visible at once under a new epoch and are
// written once it takes them. (A background sync that fails keeps the
// epoch: what it had not synced is already published, and a restart
// without a clean stop continues in a new epoch instead.)
func TestDiskRefusesThenRecovers(t *testing.T) {
	probe := &faultFS{FS: OS{}}
	var startEpoch Epoch
	scenario := func(ffs FS, dir string) (j *Journal, appended []*Entry, sawErr bool) {
		j, err := Open(dir, Options{FS: ffs, SegmentBytes: 2 << 10})
		require.NoError(t, err)
		startEpoch = j.Epoch()
		s, first := newStepper(t)
		refused := func(err error) bool {
			var de *DiskError
			return errors.As(err, &de) && de.Backlog > 0
		}
		sawErr = refused(j.Append(first))
		appended = append(appended, first)
		for range 12 {
			e := s.next()
			if refused(j.Append(e)) {
				sawErr = true
			}
			appended = append(appended, e)
		}
		return j, appended, sawErr
	}
	j, _, _ := scenario(probe, t.TempDir())
	require.NoError(t, j.Close())
	total := probe.writes()

	for at := 2; at <= total; at++ {
		dir := t.TempDir()
		ffs := &faultFS{FS: OS{}, failAt: at, err: syscall.ENOSPC}
		j, appended, sawErr := scenario(ffs, dir)
		if sawErr {
			var de *DiskError
			_ = j.Append() // a sync that failed meanwhile is tried again too
			require.NoError(t, j.Append(), "write %d: the retry writes the backlog", at)
			require.NoError(t, j.Degraded())
			_ = de
			last := appended[len(appended)-1]
			require.NotEqual(t, startEpoch, last.Epoch, "write %d: entries after the refusal carry a new epoch", at)
		}
		// Every entry is visible now, and survives a reopen.
		for _, e := range appended {
			got, err := j.Get(e.LSN)
			require.NoError(t, err, "write %d", at)
			require.Equal(t, e.Epoch, got.Epoch)
		}
		_ = j.Close() // the refused write may be Close's own head write
		if at > ffs.writes() {
			continue // the scenario did not reach it
		}
		j2, err := Open(dir, Options{SegmentBytes: 2 << 10})
		require.NoError(t, err)
		require.Zero(t, j2.Recovered().Lost, "write %d: %v", at, j2.Recovered().Damage)
		for _, e := range appended {
			got, err := j2.Get(e.LSN)
			require.NoError(t, err, "write %d: entry %d", at, e.LSN)
			require.Equal(t, e.Epoch, got.Epoch, "write %d: entry %d", at, e.LSN)
		}
		require.NoError(t, j2.Close())
	}
}

func TestBacklogIsBoundedAndCountsDrops(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{FS: OS{}}
	j := open(t, dir, Options{FS: ffs, MaxBacklog: 5})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	ffs.mu.Lock()
	ffs.failAt, ffs.err, ffs.crash = ffs.n+1, syscall.ENOSPC, true // every write fails from now on
	ffs.mu.Unlock()
	var last error
	for range 8 {
		last = j.Append(s.next())
	}
	var de *DiskError
	require.ErrorAs(t, last, &de)
	require.Equal(t, 5, de.Backlog)
	require.Equal(t, 3, de.Dropped)
	_, err := j.Get(2)
	require.ErrorIs(t, err, ErrLost, "a dropped entry says so")
	_, err = j.Get(9)
	require.NoError(t, err)
}

func TestLockedByAnotherOpen(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	_, err := Open(dir, Options{})
	require.ErrorIs(t, err, ErrLocked)
}

func TestSeqIndex(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	es := fill(t, j, s, 30)
	ep := j.Epoch()
	f, l, ok := j.SeqRange(ep)
	require.True(t, ok)
	require.Equal(t, uint64(1), f)
	require.Equal(t, s.c.Snapshot().Seq, l)
	lsns := j.EntriesWithSeqs(ep, 5, 8)
	require.NotEmpty(t, lsns)
	var seqs []uint64
	for _, lsn := range lsns {
		e, err := j.Get(lsn)
		require.NoError(t, err)
		for _, r := range e.Records {
			seqs = append(seqs, r.Seq)
		}
	}
	assert.Subset(t, seqs, []uint64{5, 6, 7, 8})
	_, _, ok = j.SeqRange(ep + 1)
	require.False(t, ok)
	_ = es
}

func TestSnapshotAt(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	es := fill(t, j, s, 12)
	for _, e := range es {
		snap := j.SnapshotAt(e.LSN)
		require.NotNil(t, snap)
		if e.Snapshot != nil {
			require.Equal(t, e.Snapshot.Seq, snap.Seq)
		}
	}
}

func TestFrameRejectsGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		_, _, _, err := readFrame(b)
		require.Error(t, err)
	}
	s, e := newStepper(t)
	_ = s
	e.LSN, e.Epoch = 7, 9
	b, h, err := appendFrame(nil, e)
	require.NoError(t, err)
	h2, js, n, err := readFrame(b)
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	require.Equal(t, h, h2)
	got, err := decodeEntry(h2, js)
	require.NoError(t, err)
	require.Equal(t, e.Records[0].Type, got.Records[0].Type)
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x04
		_, _, _, err := readFrame(c)
		require.Error(t, err, "a flipped bit at byte %d is caught", i)
	}
}

func TestEpochWireForm(t *testing.T) {
	e := NewEpoch()
	got, err := ParseEpoch(e.String())
	require.NoError(t, err)
	require.Equal(t, e, got)
	for _, bad := range []string{"", "0000000000000000", "xyz", "0123456789abcdef0"} {
		_, err := ParseEpoch(bad)
		require.Error(t, err, bad)
	}
}

func TestReadOnlyDirectoryOpensDegraded(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 3)
	ep := j.Epoch()
	require.NoError(t, j.Close())

	j2 := open(t, dir, Options{FS: roFS{OS{}}})
	rec := j2.Recovered()
	require.Error(t, rec.WriteErr)
	require.ErrorIs(t, rec.WriteErr, syscall.EROFS)
	require.Contains(t, rec.WriteErr.Error(), dir, "the error names the path")
	require.NotEqual(t, ep, j2.Epoch(), "appends that can only live in memory get their own epoch")
	e := s.next()
	err := j2.Append(e)
	var de *DiskError
	require.ErrorAs(t, err, &de)
	got, gerr := j2.Get(e.LSN)
	require.NoError(t, gerr, "visible from memory")
	require.Equal(t, j2.Epoch(), got.Epoch)
	snap, _ := j2.Latest()
	require.NotNil(t, snap, "the room's state is read even though nothing can be written")
}

// roFS refuses every change, as a read-only mount does.
type roFS struct{ FS }

func (r roFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE) != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EROFS}
	}
	return r.FS.OpenFile(name, flag, perm)
}

func (r roFS) MkdirAll(dir string, _ os.FileMode) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	return &os.PathError{Op: "mkdir", Path: dir, Err: syscall.EROFS}
}

func (r roFS) Remove(name string) error {
	return &os.PathError{Op: "remove", Path: name, Err: syscall.EROFS}
}

func (r roFS) Rename(from, _ string) error {
	return &os.PathError{Op: "rename", Path: from, Err: syscall.EROFS}
}

func (r roFS) SyncDir(string) error { return nil }

var _ = errors.New

// TestOpenedWithoutAnEntryIsFresh: a new journal closed before any entry
// was given to it (a function test refused or stopped on a new room)
// leaves no head behind, so it opens fresh again rather than as a journal
// whose entries are gone. A journal that had entries, or that was not new,
// keeps its head.
func TestOpenedWithoutAnEntryIsFresh(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	require.True(t, j.Recovered().Fresh)
	require.FileExists(t, filepath.Join(dir, headName), "the head is written at open")
	require.NoError(t, j.Close())
	require.NoFileExists(t, filepath.Join(dir, headName))

	j = open(t, dir, Options{})
	rec := j.Recovered()
	require.True(t, rec.Fresh, "%+v", rec)
	require.False(t, rec.NewEpoch)
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, 2)
	require.NoError(t, j.Close())
	require.FileExists(t, filepath.Join(dir, headName))

	// Opened again and closed without an entry: not new, the head stays.
	j = open(t, dir, Options{})
	require.False(t, j.Recovered().Fresh)
	require.NoError(t, j.Close())
	require.FileExists(t, filepath.Join(dir, headName))

	// Entries that were written and are gone are still loss.
	for _, seg := range segFiles(t, dir) {
		require.NoError(t, os.Remove(seg))
	}
	j = open(t, dir, Options{})
	defer j.Close()
	rec = j.Recovered()
	require.False(t, rec.Fresh, "entries were written and are gone")
	require.True(t, rec.NewEpoch)
}

func TestEntryOfKeepsWhatAStepMustPersist(t *testing.T) {
	c, _, err := controller.New(testPolicy, t0)
	require.NoError(t, err)
	at := t0.Add(time.Second)
	e := EntryOf(c, c.Step(controller.Command{At: at, RequestID: "r1", Action: controller.ActionStartVisit,
		VisitID: "v1", Duration: time.Hour, By: "guard-7"}))
	assert.Equal(t, at, e.At)
	require.Len(t, e.Replies, 1)
	assert.Equal(t, "guard-7", e.Replies[0].Operator)
	assert.Equal(t, "r1", e.Replies[0].Reply.RequestID)
	assert.NotEmpty(t, e.Records, "visit_started is a record")
	require.NotNil(t, e.Snapshot, "the state changed")
	assert.Equal(t, c.Snapshot(), *e.Snapshot)
	assert.False(t, e.Empty())

	quiet := EntryOf(c, c.Step(controller.Tick{At: at}))
	assert.True(t, quiet.Empty(), "a tick that changes nothing leaves nothing to keep: %+v", quiet)
}

// writeClosed writes a journal in dir: a first step and n more, then
// closes it and returns its epoch.
func writeClosed(t *testing.T, dir string, n int) Epoch {
	t.Helper()
	j := open(t, dir, Options{})
	s, first := newStepper(t)
	require.NoError(t, j.Append(first))
	fill(t, j, s, n)
	ep := j.Epoch()
	require.NoError(t, j.Close())
	return ep
}

// flipInLastEntry flips a bit inside the last, complete entry of the first
// segment in dir.
func flipInLastEntry(t *testing.T, dir string) {
	t.Helper()
	seg := segFiles(t, dir)[0]
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[len(b)-3] ^= 0x01
	require.NoError(t, os.WriteFile(seg, b, 0o600))
}
