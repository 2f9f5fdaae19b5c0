package commission

import (
	"context"
	"fmt"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/device/eol"
	"github.com/roomd/roomd/journal"
)

// Options describe one commissioning run. Journal and Lines are open: the
// caller opened the room's journal (which keeps roomd from starting
// meanwhile) and its device backend, and closes both after Run.
type Options struct {
	Room   string
	Policy controller.Policy
	// By is the tester's operator id (controller.ValidOperatorID).
	By   string
	Walk WalkOptions
	// ReportDir is where the report goes (made if missing).
	ReportDir string
	// StateDir, if set, is the room's state directory, where the
	// baselines of the supervised loops that passed are kept
	// (device.BaselineFile) for roomd to judge drift against.
	StateDir string
	Version  string // roomd's version
	Backend  string // gpio or sim, for the report

	Journal   *journal.Journal
	Lines     Lines
	Installer Installer
	// Clock is the room's clock; nil: the system's. MinPlausible is the
	// earliest believable wall clock (zero: the daemon's default).
	Clock        timebase.Sources
	MinPlausible time.Time
	// Sync, if set, is the card's measured sync latency, for the report.
	Sync *SyncReport
}

// Outcome is what a completed run left: the report, its files and the
// function_test record appended to the journal.
type Outcome struct {
	Report Report
	Files  []string
	Record controller.Record
}

// Run commissions the room: it checks that a test may run (Check), walks
// the installer through the lines (Walk), writes the report and records
// the result in the journal (Record), in that order. A test that
// completed is recorded whether it passed or failed (Outcome.Report.Passed
// says which). Nothing is recorded when ctx ends first (every output is
// off then), when the report cannot be written, or on any other error.
func Run(ctx context.Context, o Options) (Outcome, error) {
	if !controller.ValidOperatorID(o.By) {
		return Outcome{}, fmt.Errorf("function test: --by %q is not an operator id (1 to 64 of A-Z a-z 0-9 . _ : -, and not %q)", o.By, controller.OnSite)
	}
	if err := Check(o.Journal, o.Policy); err != nil {
		return Outcome{}, fmt.Errorf("function test of room %s: %w", o.Room, err)
	}
	lines, err := Walk(ctx, o.Lines, o.Installer, o.Walk)
	if err != nil {
		return Outcome{}, fmt.Errorf("function test of room %s stopped, nothing recorded: %w", o.Room, err)
	}
	clock := o.Clock
	if clock == nil {
		clock = daemon.SystemClock{}
	}
	ev := controller.FunctionTested{At: at(o.Journal, clock, o.MinPlausible), By: o.By,
		Test: controller.FunctionTest{Mode: o.Walk.Mode, Passed: true, Version: o.Version}}
	for _, l := range lines {
		ev.Test.Lines = append(ev.Test.Lines, l.LineResult)
		ev.Test.Passed = ev.Test.Passed && l.Passed
	}
	if err := ev.Validate(); err != nil {
		return Outcome{}, fmt.Errorf("function test of room %s: %w", o.Room, err)
	}
	out := Outcome{Report: Report{Room: o.Room, At: ev.At, By: o.By, Mode: o.Walk.Mode, Version: o.Version,
		Backend: o.Backend, Passed: ev.Test.Passed, Lines: lines, Sync: o.Sync}}
	if out.Files, err = WriteReport(o.ReportDir, out.Report); err != nil {
		return Outcome{}, fmt.Errorf("function test of room %s not recorded: %w", o.Room, err)
	}
	if err := saveBaselines(o, ev, lines); err != nil {
		return Outcome{}, fmt.Errorf("function test of room %s: the report is written (%s), but %w", o.Room, out.Files[0], err)
	}
	if out.Record, err = Record(o.Journal, o.Policy, ev); err != nil {
		return Outcome{}, fmt.Errorf("function test of room %s: the report is written (%s), but %w", o.Room, out.Files[0], err)
	}
	return out, nil
}

// saveBaselines keeps the baseline of every supervised loop that passed,
// beside those of loops this test did not measure.
func saveBaselines(o Options, ev controller.FunctionTested, lines []LineReport) error {
	if o.StateDir == "" {
		return nil
	}
	b, err := device.LoadBaselines(o.StateDir)
	if err != nil {
		b = device.Baselines{} // unreadable: this test measures afresh
	}
	n := 0
	for _, l := range lines {
		if l.Baseline != nil && l.Passed {
			if b.Loops == nil {
				b.Loops = map[string]eol.Baseline{}
			}
			b.Loops[l.Name()] = *l.Baseline
			n++
		}
	}
	if n == 0 {
		return nil
	}
	b.At, b.By = ev.At, ev.By
	return device.SaveBaselines(o.StateDir, b)
}
