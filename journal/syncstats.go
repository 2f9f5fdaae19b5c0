package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// SyncStats measures how long the disk takes to make the journal durable:
// every fdatasync (and directory sync) of the background syncer. It keeps
// the last SyncWindow samples for percentiles and cumulative counts per
// bucket for the life of the process, so that a metrics exporter can read
// it as a histogram. Safe for concurrent use; the zero value is ready.
type SyncStats struct {
	mu      sync.Mutex
	ring    []time.Duration
	next    int
	count   uint64
	sum     time.Duration
	max     time.Duration
	buckets [syncBucketCount + 1]uint64
	over    uint64    // samples above SyncStall
	began   time.Time // when the sync now running began; zero when none runs
}

// SyncWindow is how many recent syncs the percentiles cover.
const SyncWindow = 1024

// SyncStall is a single sync long enough to be a fault on its own: the
// card stopped answering for that long, and an alert synced behind it
// would have waited as long.
const SyncStall = time.Second

const syncBucketCount = 12

// SyncBuckets are the upper bounds of the histogram's buckets; a last,
// unbounded bucket follows.
var SyncBuckets = [syncBucketCount]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
}

// Begin records that a sync began at at; Observe ends it. A sync that
// never returns (a card that stopped answering) is seen as Pending.
func (s *SyncStats) Begin(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.began = at
}

// Observe records one sync, and ends the one Begin began.
func (s *SyncStats) Observe(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.began = time.Time{}
	if len(s.ring) < SyncWindow {
		s.ring = append(s.ring, d)
	} else {
		s.ring[s.next] = d
	}
	s.next = (s.next + 1) % SyncWindow
	s.count++
	s.sum += d
	s.max = max(s.max, d)
	i, _ := slices.BinarySearch(SyncBuckets[:], d)
	s.buckets[i]++
	if d > SyncStall {
		s.over++
	}
}

// SyncSummary is what SyncStats has seen.
type SyncSummary struct {
	// Count, Sum and Max cover the life of the process.
	Count uint64
	Sum   time.Duration
	Max   time.Duration
	// Stalls counts syncs above SyncStall.
	Stalls uint64
	// Recent is how many samples the percentiles cover (at most SyncWindow).
	Recent   int
	P50, P99 time.Duration
	// RecentMax is the longest of the recent samples.
	RecentMax time.Duration
	// Pending is how long the sync now running has run (zero when none
	// runs): above SyncStall it is a stall that has not ended, and may
	// never end.
	Pending time.Duration
	// Buckets are cumulative counts: Buckets[i] syncs took at most
	// SyncBuckets[i]; the last one counts them all.
	Buckets []uint64
}

// Summary returns the counts and the percentiles of the recent syncs (the
// last SyncWindow).
func (s *SyncStats) Summary() SyncSummary { return s.Last(SyncWindow) }

// Last is Summary with the percentiles over the last n syncs only.
func (s *SyncStats) Last(n int) SyncSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.ring))
	out := SyncSummary{Count: s.count, Sum: s.sum, Max: s.max, Stalls: s.over, Recent: n}
	if !s.began.IsZero() {
		out.Pending = wallclock.Since(s.began)
	}
	if n > 0 {
		r := make([]time.Duration, 0, n)
		for i := 1; i <= n; i++ {
			r = append(r, s.ring[(s.next-i+len(s.ring))%len(s.ring)])
		}
		slices.Sort(r)
		out.P50 = r[(len(r)-1)*50/100]
		out.P99 = r[(len(r)-1)*99/100]
		out.RecentMax = r[len(r)-1]
	}
	var c uint64
	for _, n := range s.buckets {
		c += n
		out.Buckets = append(out.Buckets, c)
	}
	return out
}

// DiskOf names the disk that holds dir, for a fault: the device of the
// longest mount point above it in /proc/self/mounts, with the mount point
// ("/dev/mmcblk0p2 on /var/lib/roomd"); dir itself when it cannot tell.
func DiskOf(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil || dir == "" {
		return dir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	best, dev := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		mp := strings.ReplaceAll(f[1], `\040`, " ")
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, dev = mp, f[0]
		}
	}
	if best == "" {
		return dir
	}
	return fmt.Sprintf("%s on %s (journal %s)", dev, best, dir)
}

// ProbeSync measures the disk under dir the way the journal uses it: n
// times a write of 4 KiB at the end of a file and one fdatasync, in a
// temporary file (sync-probe.tmp, deleted after; Open deletes it too if a
// probe was cut short). Commissioning reports its p50 and p99 beside the
// limit the room warns above.
func ProbeSync(fsys FS, dir string, n int) (SyncSummary, error) {
	if fsys == nil {
		fsys = OS{}
	}
	path := join(dir, "sync-probe"+tmpSuffix)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return SyncSummary{}, fmt.Errorf("probe the disk's syncs in %s: %w", dir, err)
	}
	defer func() {
		_ = f.Close()
		_ = fsys.Remove(path)
	}()
	var st SyncStats
	buf := make([]byte, 4096)
	for i := range n {
		if _, err := f.WriteAt(buf, int64(i)*int64(len(buf))); err != nil {
			return SyncSummary{}, fmt.Errorf("probe the disk's syncs in %s: %w", dir, err)
		}
		start := wallclock.Now()
		if err := f.Sync(); err != nil {
			return SyncSummary{}, fmt.Errorf("probe the disk's syncs in %s: %w", dir, err)
		}
		st.Observe(wallclock.Since(start))
	}
	return st.Summary(), nil
}
