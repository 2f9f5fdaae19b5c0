package commission

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Simulator is the simulated room a Terminal can act on: lines typed in
// the simulator's syntax are carried out on it, and it shows what the
// outputs do, since on a laptop there is no lamp to look at.
type Simulator interface {
	Apply(c contract.SimControl) error
	Outputs() map[controller.Output]controller.Mode
}

// Terminal is the Installer of roomd commission: it prints every step on
// out and reads the installer's answers (y or n) from in, one a line. With
// a Simulator, a line in the simulator's syntax (door=open,
// panic:toilet=pressed, fault=door, bounce=door:open:5:100ms, or a JSON
// control) acts on the simulated room instead, so that a tester can play
// the installer on a laptop and a test can script it.
type Terminal struct {
	out io.Writer
	sim Simulator

	mu      sync.Mutex
	waiting chan bool // the pending Confirm, nil when none
	closed  error     // why in ended; nil while it is open
	done    chan struct{}
}

// NewTerminal reads in until it ends; sim may be nil.
func NewTerminal(in io.Reader, out io.Writer, sim Simulator) *Terminal {
	t := &Terminal{out: out, sim: sim, done: make(chan struct{})}
	go t.read(in)
	return t
}

func (t *Terminal) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format, args...)
}

// read takes the installer's lines until in ends.
func (t *Terminal) read(in io.Reader) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch strings.ToLower(line) {
		case "":
			continue
		case "y", "yes", "n", "no":
			t.answer(strings.HasPrefix(strings.ToLower(line), "y"))
			continue
		}
		if t.sim == nil {
			t.printf("  not understood: %q (answer y or n when asked)\n", line)
			continue
		}
		c, err := contract.ParseSimAssignments(strings.Fields(line))
		if err == nil {
			err = t.sim.Apply(c)
		}
		if err != nil {
			t.printf("  simulator: %v\n", err)
			continue
		}
		t.printf("  simulator: %s\n", line)
	}
	err := sc.Err()
	if err == nil {
		err = io.EOF
	}
	t.mu.Lock()
	t.closed = err
	t.mu.Unlock()
	close(t.done)
}

// answer hands y or n to the pending Confirm.
func (t *Terminal) answer(yes bool) {
	t.mu.Lock()
	w := t.waiting
	t.waiting = nil
	if w == nil {
		fmt.Fprintln(t.out, "  (nothing is asked now)")
	}
	t.mu.Unlock()
	if w != nil {
		w <- yes
	}
}

// Show implements Installer.
func (t *Terminal) Show(text string) { t.printf("  %s\n", text) }

// Act implements Installer.
func (t *Terminal) Act(s Step) {
	t.printf("> %s: %s\n", lineName(s), s.Text)
}

// Confirm implements Installer.
func (t *Terminal) Confirm(ctx context.Context, s Step) (bool, error) {
	w := make(chan bool, 1)
	t.mu.Lock()
	if t.closed != nil {
		err := t.closed
		t.mu.Unlock()
		return false, fmt.Errorf("no answer: the input ended: %w", err)
	}
	t.waiting = w
	if t.sim != nil {
		fmt.Fprintf(t.out, "  (simulator: %s now shows %s)\n", s.Output, t.sim.Outputs()[s.Output])
	}
	fmt.Fprintf(t.out, "? %s (%s): %s Answer y or n.\n", s.Output, s.Line, s.Text)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.waiting == w {
			t.waiting = nil
		}
		t.mu.Unlock()
	}()
	select {
	case yes := <-w:
		return yes, nil
	case <-t.done:
		select {
		case yes := <-w:
			return yes, nil
		default:
		}
		t.mu.Lock()
		err := t.closed
		t.mu.Unlock()
		return false, fmt.Errorf("no answer: the input ended: %w", err)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
