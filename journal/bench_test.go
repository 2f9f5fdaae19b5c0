package journal

import (
	"slices"
	"testing"
	"time"

	"github.com/roomd/roomd/wallclock"
	"github.com/stretchr/testify/require"
)

// BenchmarkAppend measures one step's append: encode, one write, one sync
// (fdatasync). Each step carries a record and the room's snapshot, as a
// door or panic change during a visit does. p50 and p99 are reported beside
// the mean.
func BenchmarkAppend(b *testing.B) { benchAppend(b, 0) }

// BenchmarkAppendAfterIdle is BenchmarkAppend with the disk left idle for
// 20 ms before each append (the pause is not timed), as a room's appends
// come: one step now and then, not back to back. On a virtual disk the
// sync after a pause costs several times the sync of a busy loop.
func BenchmarkAppendAfterIdle(b *testing.B) { benchAppend(b, 20*time.Millisecond) }

// benchAppend appends steps, each after idle untimed, and reports the
// percentiles of the appends.
func benchAppend(b *testing.B, idle time.Duration) {
	j, err := Open(b.TempDir(), Options{})
	require.NoError(b, err)
	defer j.Close()
	s, first := newStepper(b)
	require.NoError(b, j.Append(first))
	steps := make([]*Entry, 64)
	for i := range steps {
		steps[i] = s.next()
	}
	var took []time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if idle > 0 {
			b.StopTimer()
			time.Sleep(idle)
			b.StartTimer()
		}
		e := *steps[i%len(steps)]
		i++
		start := wallclock.Now()
		if err := j.Append(&e); err != nil {
			b.Fatal(err)
		}
		took = append(took, wallclock.Since(start))
	}
	reportPercentiles(b, took)
}

func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkRecover100k measures Open on a journal of 100,000 entries
// (records, snapshots and replies, about 100 segments): reading, checking
// and indexing it, and decoding the latest snapshot.
func BenchmarkRecover100k(b *testing.B) {
	dir := b.TempDir()
	j, err := Open(dir, Options{})
	require.NoError(b, err)
	s, first := newStepper(b)
	require.NoError(b, j.Append(first))
	const n = 100000
	batch := make([]*Entry, 0, 1000)
	for i := 1; i < n; i++ {
		batch = append(batch, s.next())
		if len(batch) == cap(batch) || i == n-1 {
			require.NoError(b, j.Append(batch...))
			batch = batch[:0]
		}
	}
	size := j.Size()
	require.NoError(b, j.Close())
	b.ResetTimer()
	for b.Loop() {
		j, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if got := j.Recovered().Entries; got < n {
			b.Fatalf("recovered %d entries, want %d", got, n)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}
