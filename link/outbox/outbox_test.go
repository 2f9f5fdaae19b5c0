package outbox

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func open(t testing.TB, dir string, lim Limits) *Outbox {
	t.Helper()
	o, err := Open(dir, lim)
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func ids(es []Entry) []uint64 {
	out := make([]uint64, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func appendN(t testing.TB, o *Outbox, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := range n {
		e, err := o.Append(fmt.Sprintf("roomd/r1/event/%d", i), []byte(fmt.Sprintf(`{"n":%d}`, i)), i%2 == 0)
		require.NoError(t, err)
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

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
	return dst
}

func TestAppendAckReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o := open(t, dir, Limits{})
	es := appendN(t, o, 3)
	assert.Equal(t, []uint64{1, 2, 3}, ids(es))
	assert.Equal(t, "roomd/r1/event/1", es[1].Topic)
	assert.Equal(t, `{"n":1}`, string(es[1].Payload))
	assert.True(t, es[0].Retained)
	assert.False(t, es[1].Retained)
	assert.Equal(t, 3, o.Len())
	assert.Equal(t, recordSize(16, 7)*3, o.Bytes())

	require.NoError(t, o.Ack(2))
	assert.Equal(t, []uint64{1, 3}, ids(o.Pending()))
	assert.Equal(t, es[0], o.Pending()[0])
	assert.Equal(t, recordSize(16, 7)*2, o.Bytes())
	require.NoError(t, o.Close())

	o2 := open(t, dir, Limits{})
	assert.Equal(t, Recovery{}, o2.Recovered())
	got := o2.Pending()
	require.Equal(t, []Entry{es[0], es[2]}, got)
	assert.Equal(t, recordSize(16, 7)*2, o2.Bytes())
	e, err := o2.Append("t", nil, false)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), e.ID)
}

func TestPendingIsACopy(t *testing.T) {
	o := open(t, t.TempDir(), Limits{})
	payload := []byte("abc")
	_, err := o.Append("t", payload, false)
	require.NoError(t, err)
	payload[0] = 'X'
	p := o.Pending()
	p[0].Payload[1] = 'Y'
	assert.Equal(t, "abc", string(o.Pending()[0].Payload))
}

func TestOutOfOrderAndRepeatedAcks(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	appendN(t, o, 10)
	for _, id := range []uint64{7, 2, 9, 2, 10, 1, 7, 999, 0} {
		require.NoError(t, o.Ack(id))
	}
	want := []uint64{3, 4, 5, 6, 8}
	assert.Equal(t, want, ids(o.Pending()))
	require.NoError(t, o.Close())

	o2 := open(t, dir, Limits{})
	assert.Equal(t, want, ids(o2.Pending()))
	assert.Equal(t, Recovery{}, o2.Recovered())
}

// lastRecordSpan returns the offsets of the last record of the active segment.
func lastRecordSpan(t *testing.T, o *Outbox, before int64) (string, int64, int64) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	act := o.segs[len(o.segs)-1]
	return act.path, before, act.size
}

func activeSize(o *Outbox) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.segs[len(o.segs)-1].size
}

func TestTornTailAtEveryOffset(t *testing.T) {
	src := t.TempDir()
	o := open(t, src, Limits{})
	appendN(t, o, 2)
	start := activeSize(o)
	_, err := o.Append("roomd/r1/alert/panic", []byte(`{"alert":"panic"}`), true)
	require.NoError(t, err)
	segPath, start, end := lastRecordSpan(t, o, start)
	require.NoError(t, o.Close())
	seg := filepath.Base(segPath)

	for cut := start; cut < end; cut++ {
		dir := copyDir(t, src)
		require.NoError(t, os.Truncate(filepath.Join(dir, seg), cut))
		o, err := Open(dir, Limits{})
		require.NoError(t, err, "cut at %d", cut)
		assert.Equal(t, []uint64{1, 2}, ids(o.Pending()), "cut at %d", cut)
		assert.Equal(t, Recovery{TornBytes: cut - start}, o.Recovered(), "cut at %d", cut)
		e, err := o.Append("t", []byte("after"), false)
		require.NoError(t, err)
		assert.Greater(t, e.ID, uint64(2))
		require.NoError(t, o.Close())

		// The torn bytes are gone for good; the new record survives.
		o, err = Open(dir, Limits{})
		require.NoError(t, err)
		assert.Equal(t, Recovery{}, o.Recovered())
		assert.Equal(t, []uint64{1, 2, e.ID}, ids(o.Pending()))
		require.NoError(t, o.Close())
	}
}

func TestZeroFilledTailIsTorn(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	appendN(t, o, 2)
	require.NoError(t, o.Close())
	seg := segFiles(t, dir)[0]
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 4096))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	o2 := open(t, dir, Limits{})
	assert.Equal(t, Recovery{TornBytes: 4096}, o2.Recovered())
	assert.Equal(t, []uint64{1, 2}, ids(o2.Pending()))
}

func TestCorruptMiddleRecordEveryByte(t *testing.T) {
	src := t.TempDir()
	o := open(t, src, Limits{})
	appendN(t, o, 1)
	start := activeSize(o)
	appendN(t, o, 1)
	end := activeSize(o)
	appendN(t, o, 1)
	require.NoError(t, o.Close())
	seg := filepath.Base(segFiles(t, src)[0])

	for off := start; off < end; off++ {
		dir := copyDir(t, src)
		path := filepath.Join(dir, seg)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		b[off] ^= 0x10
		require.NoError(t, os.WriteFile(path, b, 0o600))

		o, err := Open(dir, Limits{})
		require.NoError(t, err, "flip at %d", off)
		assert.Equal(t, []uint64{1, 3}, ids(o.Pending()), "flip at %d", off)
		assert.Equal(t, Recovery{Dropped: 1}, o.Recovered(), "flip at %d", off)
		e, err := o.Append("t", nil, false)
		require.NoError(t, err)
		assert.Equal(t, uint64(4), e.ID)
		require.NoError(t, o.Close())
	}
}

func TestCorruptSegmentGoesAwayOnceAcked(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	appendN(t, o, 1)
	mid := activeSize(o) + 20
	appendN(t, o, 2)
	require.NoError(t, o.Close())
	seg := segFiles(t, dir)[0]
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[mid] ^= 0xff
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	o = open(t, dir, Limits{})
	assert.Equal(t, 1, o.Recovered().Dropped)
	e, err := o.Append("t", nil, false)
	require.NoError(t, err)
	assert.Len(t, segFiles(t, dir), 2, "a damaged active segment takes no more appends")
	for _, id := range []uint64{1, 3} {
		require.NoError(t, o.Ack(id))
	}
	assert.Len(t, segFiles(t, dir), 1, "the damaged segment is deleted once its records are acked")
	require.NoError(t, o.Close())

	o = open(t, dir, Limits{})
	assert.Equal(t, Recovery{}, o.Recovered())
	assert.Equal(t, []uint64{e.ID}, ids(o.Pending()))
}

func TestCorruptCompleteLastRecordIsReported(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	appendN(t, o, 3)
	require.NoError(t, o.Close())
	seg := segFiles(t, dir)[0]
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	b[len(b)-1] ^= 1 // last payload byte of a complete, confirmed record
	require.NoError(t, os.WriteFile(seg, b, 0o600))

	o = open(t, dir, Limits{})
	assert.Equal(t, Recovery{Dropped: 1}, o.Recovered())
	assert.Equal(t, []uint64{1, 2}, ids(o.Pending()))
	e, err := o.Append("t", nil, false)
	require.NoError(t, err)
	assert.Greater(t, e.ID, uint64(2))
}

func TestCorruptAcks(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	appendN(t, o, 4)
	for _, id := range []uint64{1, 2, 3} {
		require.NoError(t, o.Ack(id))
	}
	require.NoError(t, o.Close())
	path := filepath.Join(dir, ackName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, b, 3*ackSize)
	b[ackSize+3] ^= 0x01 // the ack of id 2
	require.NoError(t, os.WriteFile(path, b, 0o600))

	o = open(t, dir, Limits{})
	assert.Equal(t, Recovery{CorruptAcks: 1}, o.Recovered())
	assert.Equal(t, []uint64{2, 4}, ids(o.Pending()), "a lost ack means a duplicate publish, never a loss")
	require.NoError(t, o.Close())

	// A torn last ack is dropped silently and the file repaired.
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b[:len(b)-5], 0o600))
	o = open(t, dir, Limits{})
	assert.Equal(t, Recovery{}, o.Recovered())
	assert.Equal(t, []uint64{2, 3, 4}, ids(o.Pending()))
	require.NoError(t, o.Ack(3))
	require.NoError(t, o.Close())
	o = open(t, dir, Limits{})
	assert.Equal(t, []uint64{2, 4}, ids(o.Pending()))
}

func TestErrFull(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{MaxEntries: 2})
	appendN(t, o, 2)
	size := activeSize(o)
	_, err := o.Append("t", []byte("x"), false)
	require.ErrorIs(t, err, ErrFull)
	assert.Contains(t, err.Error(), dir)
	assert.Equal(t, size, activeSize(o), "nothing written")
	assert.Equal(t, 2, o.Len())
	require.NoError(t, o.Ack(1))
	e, err := o.Append("t", []byte("x"), false)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), e.ID, "a refused append consumes no id")
	require.NoError(t, o.Close())

	rec := recordSize(1, 10)
	o = open(t, t.TempDir(), Limits{MaxBytes: 2 * rec})
	for range 2 {
		_, err := o.Append("t", make([]byte, 10), false)
		require.NoError(t, err)
	}
	_, err = o.Append("t", nil, false)
	require.ErrorIs(t, err, ErrFull)
	_, err = o.Append("t", make([]byte, 100), false)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.NotErrorIs(t, err, ErrFull)
	assert.Equal(t, 2*rec, o.Bytes())
}

func TestBadInput(t *testing.T) {
	o := open(t, t.TempDir(), Limits{})
	_, err := o.Append("", []byte("x"), false)
	assert.ErrorContains(t, err, "empty topic")
	_, err = o.Append("t", make([]byte, MaxPayload+1), false)
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = o.Append(string(make([]byte, MaxTopic+1)), nil, false)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, 0, o.Len())

	_, err = Open(t.TempDir(), Limits{MaxEntries: -1})
	assert.ErrorContains(t, err, "negative")
}

func TestIDsKeepIncreasingAfterEverythingAcked(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{SegmentBytes: 200}
	o := open(t, dir, lim)
	es := appendN(t, o, 25)
	assert.Greater(t, len(segFiles(t, dir)), 3, "small segments rotate")
	for _, e := range es {
		require.NoError(t, o.Ack(e.ID))
	}
	assert.Len(t, segFiles(t, dir), 1, "fully acked inactive segments are deleted")
	require.NoError(t, o.Close())

	o = open(t, dir, lim)
	assert.Equal(t, 0, o.Len())
	e, err := o.Append("t", nil, false)
	require.NoError(t, err)
	assert.Equal(t, uint64(26), e.ID)

	// Rotating away from the fully acked segment deletes it and keeps ids going.
	es = appendN(t, o, 10)
	for _, e := range append(es, e) {
		require.NoError(t, o.Ack(e.ID))
	}
	require.NoError(t, o.Close())
	o = open(t, dir, lim)
	e, err = o.Append("t", nil, false)
	require.NoError(t, err)
	assert.Equal(t, uint64(37), e.ID)
	fi, err := os.Stat(filepath.Join(dir, ackName))
	require.NoError(t, err)
	assert.LessOrEqual(t, fi.Size(), int64(10*ackSize), "ack file is rewritten as segments go")
}

func TestRotationRecoversInOrder(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{SegmentBytes: 150}
	o := open(t, dir, lim)
	appendN(t, o, 40)
	r := rand.New(rand.NewPCG(1, 2))
	want := map[uint64]bool{}
	for id := uint64(1); id <= 40; id++ {
		want[id] = true
	}
	for range 25 {
		id := uint64(r.IntN(40) + 1)
		require.NoError(t, o.Ack(id))
		delete(want, id)
	}
	before := o.Pending()
	assert.Len(t, before, len(want))
	for _, e := range before {
		assert.True(t, want[e.ID])
	}
	require.NoError(t, o.Close())
	o = open(t, dir, lim)
	assert.Equal(t, before, o.Pending())
	assert.Equal(t, Recovery{}, o.Recovered())
}

func TestConcurrentAppendAck(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{SegmentBytes: 512}
	o := open(t, dir, lim)
	const workers, per = 4, 25
	var wg sync.WaitGroup
	seen := make(chan uint64, workers*per)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				e, err := o.Append(fmt.Sprintf("w%d", w), []byte{byte(i)}, false)
				if !assert.NoError(t, err) {
					return
				}
				seen <- e.ID
				if i%5 != 0 {
					assert.NoError(t, o.Ack(e.ID))
				}
				_ = o.Pending()
				_ = o.Len() + int(o.Bytes())
			}
		})
	}
	wg.Wait()
	close(seen)
	unique := map[uint64]bool{}
	for id := range seen {
		assert.False(t, unique[id], "id %d handed out twice", id)
		unique[id] = true
	}
	assert.Len(t, unique, workers*per)
	assert.Equal(t, workers*per/5, o.Len())
	pending := o.Pending()
	for i := 1; i < len(pending); i++ {
		assert.Less(t, pending[i-1].ID, pending[i].ID)
	}
	require.NoError(t, o.Close())
	o = open(t, dir, lim)
	assert.Equal(t, pending, o.Pending())
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	_, err := Open(dir, Limits{})
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), dir)
	require.NoError(t, o.Close())
	o2, err := Open(dir, Limits{})
	require.NoError(t, err)
	require.NoError(t, o2.Close())
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "box")
	require.NoError(t, os.Mkdir(dir, 0o755))
	o := open(t, dir, Limits{SegmentBytes: 100})
	appendN(t, o, 5)
	require.NoError(t, o.Ack(1))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.NotEmpty(t, entries)
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), e.Name())
	}
}

func TestClosed(t *testing.T) {
	o := open(t, t.TempDir(), Limits{})
	appendN(t, o, 1)
	require.NoError(t, o.Close())
	require.NoError(t, o.Close())
	_, err := o.Append("t", nil, false)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, o.Ack(1), ErrClosed)
	assert.Equal(t, 1, o.Len())
}

func TestOpenOnUnusablePath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err := Open(file, Limits{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), file)

	// An unreadable segment (a directory in its place) is an error, not a panic.
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "seg-00000000000000000001.log"), 0o700))
	_, err = Open(dir, Limits{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "seg-00000000000000000001.log")
}

func TestLeftoverFilesIgnored(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ackTemp), []byte("junk"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "seg-x.log"), []byte("junk"), 0o600))
	o := open(t, dir, Limits{})
	assert.Equal(t, Recovery{}, o.Recovered())
	_, err := os.Stat(filepath.Join(dir, ackTemp))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, Entry{ID: 1, Topic: "a/b", Payload: []byte("{}"), Retained: true}))
	f.Add(appendRecord(nil, Entry{ID: 1 << 40, Topic: "t"}))
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		require.LessOrEqual(t, n, len(b))
		require.Equal(t, b[:n], appendRecord(nil, e), "decode then encode is the identity")
	})
}

// FuzzRecover opens an outbox whose only segment holds arbitrary bytes: Open
// must neither fail nor panic, and the outbox must work afterwards.
func FuzzRecover(f *testing.F) {
	var seed []byte
	for i := range 3 {
		seed = appendRecord(seed, Entry{ID: uint64(i + 1), Topic: "t", Payload: []byte("payload")})
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add(append(bytes.Clone(seed[:20]), seed[25:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "seg-00000000000000000001.log"), b, 0o600))
		o, err := Open(dir, Limits{})
		require.NoError(t, err)
		defer o.Close()
		p := o.Pending()
		for i := 1; i < len(p); i++ {
			require.Less(t, p[i-1].ID, p[i].ID)
		}
		e, err := o.Append("t", nil, false)
		require.NoError(t, err)
		if len(p) > 0 {
			require.Greater(t, e.ID, p[len(p)-1].ID)
		}
	})
}

// BenchmarkAppendAck measures one durable append plus its ack: two fsyncs.
func BenchmarkAppendAck(b *testing.B) {
	o, err := Open(b.TempDir(), Limits{})
	require.NoError(b, err)
	defer o.Close()
	payload := bytes.Repeat([]byte("x"), 200)
	b.ReportAllocs()
	for b.Loop() {
		e, err := o.Append("roomd/room-1/event", payload, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Ack(e.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCrashBetweenCompactionSteps restores the ack file as it was before
// segments were deleted, as if the process died between deleting segments
// and rewriting the ack file.
func TestCrashBetweenCompactionSteps(t *testing.T) {
	dir := t.TempDir()
	lim := Limits{SegmentBytes: 120}
	o := open(t, dir, lim)
	es := appendN(t, o, 12)
	for _, e := range es[:11] {
		require.NoError(t, o.Ack(e.ID))
	}
	staleAcks, err := os.ReadFile(filepath.Join(dir, ackName))
	require.NoError(t, err)
	require.NoError(t, o.Ack(es[11].ID))             // completes another segment
	_, err = o.Append("t", make([]byte, 100), false) // rotates and deletes the fully acked segment
	require.NoError(t, err)
	require.Len(t, segFiles(t, dir), 1)
	require.NoError(t, o.Close())
	// Rebuild an ack file holding stale acks plus the acks made since.
	acks := append(staleAcks, appendAck(nil, es[11].ID)...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ackName), acks, 0o600))

	o = open(t, dir, lim)
	assert.Equal(t, Recovery{}, o.Recovered())
	assert.Equal(t, []uint64{13}, ids(o.Pending()))
	e, err := o.Append("t", nil, false)
	require.NoError(t, err)
	assert.Equal(t, uint64(14), e.ID)
	fi, err := os.Stat(filepath.Join(dir, ackName))
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "stale acks are dropped on open")
}

// TestCrashAfterRotation leaves an empty newest segment, as if the process
// died after creating it and before the record was written.
func TestCrashAfterRotation(t *testing.T) {
	dir := t.TempDir()
	o := open(t, dir, Limits{})
	appendN(t, o, 3)
	require.NoError(t, o.Ack(3))
	require.NoError(t, o.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "seg-00000000000000000004.log"), nil, 0o600))

	o = open(t, dir, Limits{})
	assert.Equal(t, Recovery{}, o.Recovered())
	assert.Equal(t, []uint64{1, 2}, ids(o.Pending()))
	e, err := o.Append("t", nil, false)
	require.NoError(t, err)
	assert.Equal(t, uint64(4), e.ID)
	require.NoError(t, o.Ack(1))
	require.NoError(t, o.Ack(2))
	assert.Len(t, segFiles(t, dir), 1, "the old segment is deleted once fully acked")
}
