package journal

import (
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// DelayFS wraps an FS so that every file sync and directory sync first
// waits Delay(): the sync latency of a slow or failing card, injected in
// process (roombench --sync-delay, the sync-health tests). The real
// syscall path on a slow card is measured on a Pi by
// scripts/pi-card-latency.sh; no slow block device is emulated here.
type DelayFS struct {
	FS
	// Delay returns how long the next sync waits; nil waits nothing.
	Delay func() time.Duration
}

// OpenFile implements FS.
func (d DelayFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := d.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return delayFile{File: f, d: d}, nil
}

// SyncDir implements FS.
func (d DelayFS) SyncDir(dir string) error {
	d.wait()
	return d.FS.SyncDir(dir)
}

func (d DelayFS) wait() {
	if d.Delay != nil {
		if w := d.Delay(); w > 0 {
			time.Sleep(w)
		}
	}
}

type delayFile struct {
	File
	d DelayFS
}

func (f delayFile) Sync() error {
	f.d.wait()
	return f.File.Sync()
}

// SyncDelay is a distribution of sync latencies.
type SyncDelay struct {
	Name string
	mu   sync.Mutex
	rng  *rand.Rand
	next func(r *rand.Rand) time.Duration
}

// Next draws one latency.
func (s *SyncDelay) Next() time.Duration {
	if s == nil || s.next == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next(s.rng)
}

// SD card figures the "sdcard" distribution is modelled on: the median and
// 99th percentile of a consumer card's fdatasync under a light random
// write load, and the stalls of its internal garbage collection.
const (
	SDCardP50        = 2 * time.Millisecond
	SDCardP99        = 25 * time.Millisecond
	SDCardStall      = 300 * time.Millisecond
	SDCardStallEvery = 500 // one sync in this many stalls
)

// ParseSyncDelay reads a sync latency distribution: a duration ("0",
// "20ms": every sync takes that long), or "sdcard" (log-normal with median
// SDCardP50 and 99th percentile SDCardP99, and one sync in
// SDCardStallEvery stalling SDCardStall). seed makes the draws repeatable.
func ParseSyncDelay(s string, seed uint64) (*SyncDelay, error) {
	s = strings.TrimSpace(s)
	rng := rand.New(rand.NewPCG(seed, 0x5d))
	if s == "sdcard" {
		sigma := math.Log(float64(SDCardP99)/float64(SDCardP50)) / 2.326
		return &SyncDelay{Name: s, rng: rng, next: func(r *rand.Rand) time.Duration {
			if r.IntN(SDCardStallEvery) == 0 {
				return SDCardStall
			}
			return time.Duration(float64(SDCardP50) * math.Exp(sigma*r.NormFloat64()))
		}}, nil
	}
	d, err := time.ParseDuration(s)
	if s == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 {
		return nil, fmt.Errorf("sync delay %q: want a duration (20ms) or sdcard", s)
	}
	return &SyncDelay{Name: d.String(), rng: rng, next: func(*rand.Rand) time.Duration { return d }}, nil
}
