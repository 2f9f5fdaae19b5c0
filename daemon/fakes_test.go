package daemon_test

import (
	"context"
	"io/fs"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// fakeSources is a time axis source on time.Now: under synctest it runs on
// the bubble's fake clock. Boot counts from start.
type fakeSources struct {
	mu     sync.Mutex
	start  time.Time
	bootID string
	wall   time.Duration // added to time.Now for Wall
	synced bool
}

func newSources() *fakeSources { return &fakeSources{start: wallclock.Now(), bootID: "boot-1"} }

func (s *fakeSources) Wall() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return wallclock.Now().Add(s.wall).Round(0)
}
func (s *fakeSources) Boot() time.Duration { return wallclock.Since(s.start) }
func (s *fakeSources) BootID() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bootID, nil
}

// Synced reports the wall clock as synchronised when wallSynced is set.
func (s *fakeSources) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// The loop's Clock on these sources: real (bubble) timers.
func (s *fakeSources) NewTimer(d time.Duration) daemon.Timer { return daemon.SystemClock{}.NewTimer(d) }
func (s *fakeSources) Since(t time.Time) time.Duration       { return wallclock.Since(t) }

// reboot simulates a reboot: a new boot id and a boot clock from zero.
func (s *fakeSources) reboot(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootID = id
	s.start = wallclock.Now()
}

// fakeInputs forwards what the test sends.
type fakeInputs struct {
	ch  chan device.Reading
	err error // returned at once when set
}

func newInputs() *fakeInputs { return &fakeInputs{ch: make(chan device.Reading)} }

func (f *fakeInputs) Run(ctx context.Context, out chan<- device.Reading) error {
	if f.err != nil {
		return f.err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-f.ch:
			select {
			case out <- r:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// fakeOutputs remembers the latest mode of each output.
type fakeOutputs struct {
	mu     sync.Mutex
	modes  map[controller.Output]controller.SetOutput
	safes  int
	setErr error
	block  chan struct{} // Set waits on it when set
}

func newOutputs() *fakeOutputs {
	return &fakeOutputs{modes: map[controller.Output]controller.SetOutput{}}
}

func (f *fakeOutputs) Set(o controller.Output, m controller.Mode, pulses uint8) error {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.setErr != nil {
		return f.setErr
	}
	f.modes[o] = controller.SetOutput{Output: o, Mode: m, Pulses: pulses}
	return nil
}

func (f *fakeOutputs) Safe() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.safes++
	for _, o := range controller.Outputs {
		f.modes[o] = controller.SetOutput{Output: o}
	}
	return nil
}

func (f *fakeOutputs) mode(o controller.Output) controller.SetOutput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.modes[o]
}

func (f *fakeOutputs) safeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.safes
}

// fakeNotifier records status lines with the time they were sent.
type fakeNotifier struct {
	mu    sync.Mutex
	lines []string
	times []time.Time
}

func (f *fakeNotifier) Notify(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, s)
	f.times = append(f.times, wallclock.Now())
	return nil
}

func (f *fakeNotifier) count(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.lines {
		if l == s {
			n++
		}
	}
	return n
}

// flakyFS is the real file system, except that while full is set every
// write and sync fails with ENOSPC, as on a full disk.
type flakyFS struct {
	journal.OS
	full atomic.Bool
}

func (f *flakyFS) OpenFile(name string, flag int, perm fs.FileMode) (journal.File, error) {
	if f.full.Load() && flag&syscall.O_CREAT != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	file, err := f.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return flakyFile{File: file, fs: f}, nil
}

type flakyFile struct {
	journal.File
	fs *flakyFS
}

func (f flakyFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

func (f flakyFile) Sync() error {
	if f.fs.full.Load() {
		return syscall.ENOSPC
	}
	return f.File.Sync()
}
