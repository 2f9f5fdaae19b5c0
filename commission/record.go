package commission

import (
	"errors"
	"fmt"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/journal"
)

// VisitError says that the room's journal shows a visit: a function test
// drives the alarm outputs and asks for every sensor to be acted on, which
// must never happen with visitors inside.
type VisitError struct {
	Phase controller.Phase
}

func (e *VisitError) Error() string {
	return fmt.Sprintf("a visit is running (phase %s): the room must be empty for a function test; "+
		"start roomd again (systemctl start roomd), end the visit, stop roomd and run the test then", e.Phase)
}

// Check says whether the room whose journal j is (opened, and so held)
// may be tested now: not while its latest state shows a visit, not when
// its journal cannot be written (no result could be recorded), and not
// when its latest state cannot be restored under p.
func Check(j *journal.Journal, p controller.Policy) error {
	if err := j.Recovered().WriteErr; err != nil {
		return fmt.Errorf("the journal cannot be written, so no result could be recorded: %w", err)
	}
	if err := j.Degraded(); err != nil {
		return fmt.Errorf("the journal cannot be written, so no result could be recorded: %w", err)
	}
	snap, _ := j.Latest()
	if snap == nil {
		return nil // a room that never ran: the test is its first step
	}
	if snap.Phase.InVisit() {
		return &VisitError{Phase: snap.Phase}
	}
	if _, _, err := controller.Restore(p, *snap, snap.Now); err != nil {
		return fmt.Errorf("the room's saved state cannot be restored (roomd itself would start afresh with a fault): %w", err)
	}
	return nil
}

// Record records ev as a step of the room whose journal j is: the
// controller is restored from the journal's latest snapshot at ev.At (a
// new one if the room never ran), a journal found damaged as it opened
// raises its fault as roomd would, ev is stepped, and every resulting
// record and the snapshot are appended with one sync. It returns the
// function_test record. roomd publishes it when it starts again.
func Record(j *journal.Journal, p controller.Policy, ev controller.FunctionTested) (controller.Record, error) {
	if err := ev.Validate(); err != nil {
		return controller.Record{}, fmt.Errorf("record the function test: %w", err)
	}
	var c *controller.Controller
	var acts controller.Ready
	var err error
	if snap, _ := j.Latest(); snap != nil {
		if snap.Phase.InVisit() {
			return controller.Record{}, fmt.Errorf("record the function test: %w", &VisitError{Phase: snap.Phase})
		}
		c, acts, err = controller.Restore(p, *snap, ev.At)
	} else {
		c, acts, err = controller.New(p, ev.At)
	}
	if err != nil {
		return controller.Record{}, fmt.Errorf("record the function test: %w", err)
	}
	entries := []*journal.Entry{journal.EntryOf(c, acts)}
	if f, ok := daemon.JournalFault(j.Recovered(), j.Epoch()); ok {
		f.At = ev.At
		entries = append(entries, journal.EntryOf(c, c.Step(f)))
	}
	e := journal.EntryOf(c, c.Step(ev))
	entries = append(entries, e)
	var rec controller.Record
	for _, r := range e.Records {
		if r.Type == controller.EventFunctionTest {
			rec = r
		}
	}
	if rec.Type != controller.EventFunctionTest {
		return controller.Record{}, errors.New("record the function test: the controller recorded nothing")
	}
	if err := j.Append(entries...); err != nil {
		// A *journal.DiskError keeps the entries in memory only: they go
		// with this process.
		return controller.Record{}, fmt.Errorf("record the function test in the journal: %w", err)
	}
	return rec, nil
}

// at is the time of a record on the room's axis, resumed from its journal
// as roomd resumes it.
func at(j *journal.Journal, clock timebase.Sources, minPlausible time.Time) time.Time {
	if minPlausible.IsZero() {
		minPlausible = daemon.DefaultMinPlausible
	}
	return daemon.ResumeAxis(j, clock, minPlausible).Now()
}
