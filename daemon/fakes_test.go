package daemon_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/device"
)

// fakeSources is a time axis source on time.Now: under synctest it runs on
// the bubble's fake clock. Boot counts from start.
type fakeSources struct {
	mu     sync.Mutex
	start  time.Time
	bootID string
	wall   time.Duration // added to time.Now for Wall
}

func newSources() *fakeSources { return &fakeSources{start: time.Now(), bootID: "boot-1"} }

func (s *fakeSources) Wall() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.wall).Round(0)
}
func (s *fakeSources) Boot() time.Duration { return time.Since(s.start) }
func (s *fakeSources) BootID() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bootID, nil
}

// reboot simulates a reboot: a new boot id and a boot clock from zero.
func (s *fakeSources) reboot(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootID = id
	s.start = time.Now()
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
}

func newOutputs() *fakeOutputs {
	return &fakeOutputs{modes: map[controller.Output]controller.SetOutput{}}
}

func (f *fakeOutputs) Set(o controller.Output, m controller.Mode, pulses uint8) error {
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

// fakeLink records what the loop publishes.
type fakeLink struct {
	cmds chan controller.Command

	mu      sync.Mutex
	records []controller.Record
	states  []controller.State
	replies []controller.Reply
	full    bool
	closed  bool
	block   chan struct{} // PublishState waits on it when set
	onState chan struct{} // PublishState signals it when set
}

func newLink() *fakeLink { return &fakeLink{cmds: make(chan controller.Command)} }

func (f *fakeLink) Commands() <-chan controller.Command { return f.cmds }

func (f *fakeLink) Publish(rec controller.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return fmt.Errorf("append to outbox: %w", daemon.ErrOutboxFull)
	}
	f.records = append(f.records, rec)
	return nil
}

func (f *fakeLink) PublishState(st controller.State) error {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	f.mu.Lock()
	f.states = append(f.states, st)
	on := f.onState
	f.mu.Unlock()
	if on != nil {
		select {
		case on <- struct{}{}:
		default:
		}
	}
	return nil
}

func (f *fakeLink) Reply(rep controller.Reply, st controller.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = append(f.replies, rep)
	return nil
}

func (f *fakeLink) Close(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeLink) setFull(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = v
}

func (f *fakeLink) recs() []controller.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]controller.Record(nil), f.records...)
}

func (f *fakeLink) lastState() controller.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[len(f.states)-1]
}

func (f *fakeLink) stateCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.states)
}

func (f *fakeLink) lastReply() controller.Reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.replies[len(f.replies)-1]
}

func (f *fakeLink) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
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
	f.times = append(f.times, time.Now())
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
