package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/journal"
)

// Defaults for Options fields left zero.
const (
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultCheckpointEvery is how often the time axis is written to the
	// journal's head while nothing else happens: the floor the axis resumes
	// from after a reboot with no trustworthy wall clock.
	DefaultCheckpointEvery = time.Hour
	// DefaultRetryEvery is how often entries the disk refused are offered
	// to it again.
	DefaultRetryEvery = 5 * time.Second
	// DefaultMaxBatch bounds how many steps share one journal append.
	DefaultMaxBatch = 256
	// ClockCheckEvery is how often the loop compares its time axis with a
	// synchronised wall clock.
	ClockCheckEvery = time.Minute
	// MaxClockSkew is how far the axis may be from a synchronised wall clock
	// before it is corrected (drift below it is left alone).
	MaxClockSkew = time.Minute
	// SyncP99Limit is the sync latency (99th percentile of the last
	// SyncJudged syncs, once SyncMinSamples were seen) above which
	// the card is reported slow. A good card syncs in a few milliseconds
	// (p99 about 25 ms); a card whose p99 is ten times that is failing, or
	// its file system is badly set up.
	SyncP99Limit = 250 * time.Millisecond
	// SyncMinSamples is how many syncs the p99 needs before it is judged.
	SyncMinSamples = 50
	// SyncJudged is how many of the latest syncs the p99 covers.
	SyncJudged = 100
	// SyncCheckEvery is how often the loop looks at the sync latency.
	SyncCheckEvery = 10 * time.Second
	// DefaultHealthyEvery is how often the loop toggles the healthy output:
	// an external monostable of about 1.5 s drops out within 2 s of a
	// stalled loop (docs/wiring.md).
	DefaultHealthyEvery = 250 * time.Millisecond
)

// ErrBatteryLow is returned by Run after it stopped cleanly because the
// battery-low input said the power will go: every step is in the journal,
// so the power can go without tearing it.
var ErrBatteryLow = errors.New("the battery is low: the room stopped cleanly before the power goes")

// Options configure Run.
type Options struct {
	Room   string
	Policy controller.Policy
	// Watchdog is the interval of WATCHDOG=1 pings sent from the loop (half
	// of systemd's WatchdogSec, see WatchdogInterval); 0 sends none.
	Watchdog time.Duration
	// ShutdownTimeout bounds the wait for the input backend at shutdown.
	ShutdownTimeout time.Duration
	// CheckpointEvery: the time axis is recorded in the journal's head this
	// often. Zero: DefaultCheckpointEvery.
	CheckpointEvery time.Duration
	// RetryEvery: while the disk refuses the journal, it is tried again this
	// often. Zero: DefaultRetryEvery.
	RetryEvery time.Duration
	// MaxBatch bounds the steps that share one append. Zero: DefaultMaxBatch.
	MaxBatch int
	// MinPlausible is the earliest believable wall clock time after a
	// reboot. Zero: DefaultMinPlausible.
	MinPlausible time.Time
	// HealthyEvery is how often the healthy output is toggled (with
	// Deps.Healthy). Zero: DefaultHealthyEvery.
	HealthyEvery time.Duration
}

// Deps are the loop's collaborators.
type Deps struct {
	Inputs  InputSource
	Outputs OutputDriver
	Journal Journal
	// Commands delivers commands decoded at the edge, each with By set to
	// the operator who sent it ("" on the plain cmd topic); the loop stamps
	// each with its own clock. A closed channel means no more commands.
	Commands <-chan controller.Command
	// Faults, optional, carries faults found by collaborators (the link);
	// the loop stamps and steps them.
	Faults <-chan controller.Fault
	// Clock is the loop's time; nil means SystemClock{}.
	Clock Clock
	// Axis, optional, is the time axis already resumed from the journal
	// (ResumeAxis) when others share it; nil: Run resumes it.
	Axis     *Axis
	Notifier Notifier     // nil: no service manager
	Logger   *slog.Logger // nil: discard
	// Healthy, optional, is the healthy output, pulsed from the loop.
	Healthy Pulser
}

func (o *Options) check() error {
	var errs []error
	if o.Room == "" {
		errs = append(errs, errors.New("room is empty"))
	}
	if o.Watchdog < 0 {
		errs = append(errs, fmt.Errorf("watchdog interval must not be negative, got %s", o.Watchdog))
	}
	if err := o.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = DefaultRetryEvery
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MinPlausible.IsZero() {
		o.MinPlausible = DefaultMinPlausible
	}
	if o.HealthyEvery <= 0 {
		o.HealthyEvery = DefaultHealthyEvery
	}
	return errors.Join(errs...)
}

func (d *Deps) check() error {
	var errs []error
	if d.Inputs == nil {
		errs = append(errs, errors.New("no inputs"))
	}
	if d.Outputs == nil {
		errs = append(errs, errors.New("no outputs"))
	}
	if d.Journal == nil {
		errs = append(errs, errors.New("no journal"))
	}
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Notifier == nil {
		d.Notifier = nopNotifier{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Run runs the room until ctx ends, then shuts down: outputs safe,
// STOPPING=1, the input backend stopped. It returns nil after a clean
// shutdown and an error only when the room cannot start at all (bad options,
// invalid policy, a snapshot the controller refuses is not such an error:
// the room then starts fresh with a critical system_fault). The outputs are
// put in their safe state on every return path, including a panic.
//
// Run does not close the journal or the link: whoever opened them does,
// after Run returns, so that what the last steps wrote is still published.
func Run(ctx context.Context, opts Options, deps Deps) (err error) {
	if err := errors.Join(opts.check(), deps.check()); err != nil {
		return fmt.Errorf("run room %q: %w", opts.Room, err)
	}
	r := &runner{opts: opts, deps: deps, log: deps.Logger, j: deps.Journal}
	defer func() {
		if serr := deps.Outputs.Safe(); serr != nil {
			r.log.Error("outputs to safe state on exit failed", "err", serr)
			if err == nil {
				err = fmt.Errorf("run room %q: outputs to safe state: %w", opts.Room, serr)
			}
		}
	}()
	if serr := deps.Outputs.Safe(); serr != nil {
		r.log.Error("outputs to safe state at start failed", "err", serr)
	}
	if err := r.start(); err != nil {
		return fmt.Errorf("run room %q: %w", opts.Room, err)
	}
	return r.loop(ctx)
}

// runner is the state of one Run; only the loop goroutine touches it.
type runner struct {
	opts Options
	deps Deps
	log  *slog.Logger
	j    Journal

	clock *timebase.Clock
	ctl   *controller.Controller

	batch []*journal.Entry // steps not yet appended
	// follow are events the loop itself raises while carrying out a step
	// (faults); they are stepped right after it.
	follow []controller.Event

	diskFault bool // journal_write is raised
	// batteryLow: the battery-low input said the power will go; the loop
	// stops once the step that says so is in the journal.
	batteryLow  bool
	healthyErrs int  // failed pulses already logged
	fullFault   bool // journal_full is raised
	slowFault   bool // journal_sync is raised
	stalls      uint64
	stallAt     uint64 // sync count at the last stall
	dropped     int    // journal backlog drops already reported
	degraded    bool   // entries wait in memory for the disk
	lastBlob    time.Time
}

// Axis is the room's time axis, resumed from the journal, with what
// stopped it from simply continuing.
type Axis struct {
	*timebase.Clock
	Notice timebase.Notice
}

// ResumeAxis resumes the time axis recorded in the journal (its head and
// its latest step) on the clock sources src. See timebase.Resume.
func ResumeAxis(j Journal, src timebase.Sources, minPlausible time.Time) *Axis {
	snap, snapAt := j.Latest()
	var prev timebase.HeadBlob
	if b := j.Blob(); len(b) > 0 {
		if err := json.Unmarshal(b, &prev); err != nil {
			prev = timebase.HeadBlob{}
		}
	}
	var anchor *timebase.Anchor
	lastAxis := snapAt
	if prev.Clock.Anchor.BootID != "" || !prev.Clock.Anchor.At.IsZero() {
		anchor = &prev.Clock.Anchor
		if prev.Clock.Axis.After(lastAxis) {
			lastAxis = prev.Clock.Axis
		}
	}
	if snap != nil && snap.Now.After(lastAxis) {
		lastAxis = snap.Now
	}
	clock, notice := timebase.Resume(anchor, lastAxis, src, minPlausible)
	return &Axis{Clock: clock, Notice: notice}
}

// start resumes the time axis and the controller from the journal.
func (r *runner) start() error {
	rec := r.j.Recovered()
	snap, _ := r.j.Latest()
	axis := r.deps.Axis
	if axis == nil {
		axis = ResumeAxis(r.j, r.deps.Clock, r.opts.MinPlausible)
	}
	r.clock = axis.Clock
	notice := axis.Notice
	now := r.clock.Now()

	var acts controller.Ready
	var err error
	floor := rec.SeqFloor
	if snap != nil {
		s := *snap
		if floor > s.Seq || floor > s.NextAlert {
			// Records after the snapshot may have been published and lost
			// (a power cut, a disk that refused): seqs and alert numbers
			// continue above everything that may have gone out.
			r.log.Warn("seqs and alert numbers continue above the journal's floor", "snapshot_seq", s.Seq, "floor", floor)
			s.Seq, s.NextAlert = max(s.Seq, floor), max(s.NextAlert, floor)
		}
		snap = &s
		r.ctl, acts, err = controller.Restore(r.opts.Policy, *snap, now)
		if err != nil {
			r.log.Error("journal snapshot cannot be restored; starting fresh with a system fault", "err", err)
			r.raise(controller.Fault{Source: contract.SourceJournal, Active: true, Severity: controller.SeverityCritical,
				ClearOnAck: true, Detail: "journal snapshot unusable; the room started fresh: " + err.Error()})
			snap = nil
		} else {
			r.log.Info("room resumed from the journal", "phase", snap.Phase, "seq", snap.Seq, "epoch", r.j.Epoch())
		}
	}
	if snap == nil {
		if r.ctl, acts, err = controller.NewAbove(r.opts.Policy, now, floor); err != nil {
			return fmt.Errorf("start controller: %w", err)
		}
	}
	if f, ok := JournalFault(rec, r.j.Epoch()); ok {
		r.log.Error("journal damaged", "detail", f.Detail, "set_aside", rec.SetAside)
		r.raise(f)
	}
	if rec.TornBytes > 0 {
		r.log.Info("journal: the end of a write cut short was removed (never published)", "bytes", rec.TornBytes)
	}
	if rec.Fresh {
		r.log.Info("journal: a new one begins", "epoch", r.j.Epoch())
	}
	if rec.WriteErr != nil {
		r.diskFault, r.degraded = true, true
		r.log.Error("journal cannot be written; steps are kept in memory and published from there", "err", rec.WriteErr)
		r.raise(controller.Fault{Source: contract.SourceJournalWrite, Active: true, Severity: controller.SeverityCritical,
			Detail: "the state directory cannot be written: " + rec.WriteErr.Error()})
	}
	if notice != timebase.NoticeNone {
		r.log.Warn("time axis could not simply continue", "notice", notice.String())
		r.raise(controller.Fault{Source: contract.SourceClock, Active: true, Severity: controller.SeverityWarning, ClearOnAck: true,
			Detail: "time axis: " + notice.String() + "; time while roomd was down may be missing from timers"})
	}
	r.do(acts)
	r.drainFollow()
	r.checkClock()
	r.commit()
	r.checkpoint()
	return nil
}

// checkClock corrects the time axis when the wall clock is synchronised and
// more than MaxClockSkew away from it (a saved axis a wrong clock had put
// years ahead, say): the axis steps to the wall clock, every time the
// controller holds moves by the same amount (remaining durations are kept),
// and a clock fault says so.
func (r *runner) checkClock() {
	src := r.clock.Sources()
	if !src.Synced() {
		return
	}
	now := r.clock.Now()
	d := src.Wall().Sub(now)
	if d >= -MaxClockSkew && d <= MaxClockSkew {
		return
	}
	r.clock.Correct(d)
	r.log.Warn("time axis corrected to the synchronised wall clock", "by", d)
	r.step(controller.ClockCorrected{At: now.Add(d), Shift: d})
	r.raise(controller.Fault{Source: contract.SourceClock, Active: true, Severity: controller.SeverityWarning, ClearOnAck: true,
		Detail: fmt.Sprintf("time axis corrected by %s to the synchronised wall clock; times before the correction were off by that much", d.Round(time.Second))})
	r.drainFollow()
	r.checkpoint()
}

// JournalFault is the fault that what opening the journal found calls for:
// a critical system_fault of source journal, cleared by acknowledgement,
// when entries were damaged or lost or records continue in a new epoch;
// false when there is none. The journal repairs itself as it opens, so
// whoever opens it (roomd, or roomd commission with roomd stopped) must
// step this fault, or the damage is never told.
func JournalFault(rec journal.Recovery, ep journal.Epoch) (controller.Fault, bool) {
	if !rec.Damaged() && (!rec.NewEpoch || rec.Fresh) {
		return controller.Fault{}, false
	}
	return controller.Fault{Source: contract.SourceJournal, Active: true, Severity: controller.SeverityCritical,
		ClearOnAck: true, Detail: journalDamage(rec, ep)}, true
}

// journalDamage says in one line what recovery found.
func journalDamage(rec journal.Recovery, ep journal.Epoch) string {
	var parts []string
	if rec.Lost > 0 {
		parts = append(parts, fmt.Sprintf("journal damaged: at least %d entries lost", rec.Lost))
	} else if len(rec.Damage) > 0 {
		parts = append(parts, "journal damaged")
	}
	if len(rec.Damage) > 0 {
		parts = append(parts, strings.Join(rec.Damage, "; "))
	}
	if len(rec.SetAside) > 0 {
		parts = append(parts, "damaged files kept as "+strings.Join(rec.SetAside, ", "))
	}
	if len(rec.DroppedCopies) > 0 {
		parts = append(parts, "damaged copies deleted to keep the journal within its bound: "+strings.Join(rec.DroppedCopies, ", "))
	}
	if rec.MayHaveLost != "" {
		parts = append(parts, "the room may have forgotten: "+rec.MayHaveLost)
	}
	if rec.NewEpoch {
		parts = append(parts, fmt.Sprintf("records continue in a new epoch %s: %s", ep, rec.Reason))
	}
	return strings.Join(parts, "; ")
}

// loop is the one goroutine that owns the controller.
func (r *runner) loop(ctx context.Context) error {
	readings := make(chan device.Reading, 64)
	inCtx, stopInputs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInputs()
	inputsDone := make(chan error, 1)
	go func() { inputsDone <- r.deps.Inputs.Run(inCtx, readings) }()

	timer := r.deps.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	r.arm(timer)
	var watchdog <-chan time.Time
	if r.opts.Watchdog > 0 {
		t := time.NewTicker(r.opts.Watchdog)
		defer t.Stop()
		watchdog = t.C
	}
	retry := time.NewTicker(r.opts.RetryEvery)
	defer retry.Stop()
	// The time axis checkpoint counts axis time (a compressed replay
	// writes one per compressed hour, as a real room does per hour).
	checkpoint := r.deps.Clock.NewTimer(r.opts.CheckpointEvery)
	defer checkpoint.Stop()
	clockCheck := time.NewTicker(ClockCheckEvery)
	defer clockCheck.Stop()
	syncCheck := time.NewTicker(SyncCheckEvery)
	defer syncCheck.Stop()
	health := r.j.Health()
	var healthy <-chan time.Time
	if r.deps.Healthy != nil {
		t := time.NewTicker(r.opts.HealthyEvery)
		defer t.Stop()
		healthy = t.C
		r.pulse()
	}
	commands := r.deps.Commands

	r.notify("READY=1")
	r.log.Info("room running", "room", r.opts.Room, "phase", r.ctl.State().Phase, "policy", r.opts.Policy.Name)

	// handle steps one event; it reports false when the loop must end.
	handle := func(ev any) {
		switch ev := ev.(type) {
		case device.Reading:
			if ev.Power != 0 {
				r.power(ev)
				return
			}
			r.step(ev.Event(r.readingAt(ev)))
		case controller.Command:
			ev.At = r.clock.Now()
			r.log.Debug("command", "action", ev.Action, "request", ev.RequestID, "visit", ev.VisitID, "by", ev.By)
			r.step(ev)
		case tick:
			r.step(controller.Tick{At: r.clock.Now()})
		case controller.Fault:
			ev.At = r.clock.Now()
			r.log.Warn("fault reported", "source", ev.Source, "active", ev.Active)
			r.step(ev)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return r.shutdown(stopInputs, inputsDone)
		case rd := <-readings:
			handle(rd)
		case cmd, ok := <-commands:
			if !ok {
				commands = nil
				r.log.Warn("command channel closed; no more commands")
				continue
			}
			handle(cmd)
		case <-timer.C():
			handle(tick{})
		case f := <-r.deps.Faults:
			handle(f)
		case <-retry.C:
			if r.degraded {
				r.commit() // offers the waiting entries to the disk again
			}
			continue
		case <-health:
			health = r.j.Health()
			r.journalNotices()
			r.checkSync()
			r.degraded = true // commit asks the journal how the disk is
		case <-syncCheck.C:
			r.checkSync()
		case <-checkpoint.C():
			r.checkpoint()
			checkpoint.Reset(r.opts.CheckpointEvery)
			continue
		case <-clockCheck.C:
			r.checkClock()
		case <-watchdog:
			r.notify("WATCHDOG=1")
			continue
		case <-healthy:
			r.pulse()
			continue
		case err := <-inputsDone:
			inputsDone = nil
			if err == nil {
				err = errors.New("input backend stopped")
			}
			r.log.Error("input backend failed", "err", err)
			r.step(controller.Fault{At: r.clock.Now(), Source: contract.SourceInputs, Active: true,
				Severity: controller.SeverityCritical, Detail: err.Error()})
		}
		// Group commit: steps already waiting share the append.
	drain:
		for n := 1; n < r.opts.MaxBatch; n++ {
			select {
			case rd := <-readings:
				handle(rd)
			case cmd, ok := <-commands:
				if !ok {
					commands = nil
					break drain
				}
				handle(cmd)
			case f := <-r.deps.Faults:
				handle(f)
			default:
				break drain
			}
		}
		r.commit()
		r.arm(timer)
		if r.batteryLow {
			r.log.Error("battery low: stopping cleanly before the power goes", "seq", r.ctl.State().Seq)
			if err := r.shutdown(stopInputs, inputsDone); err != nil {
				return err
			}
			return ErrBatteryLow
		}
	}
}

// pulse toggles the healthy output; it runs on the loop's goroutine only.
func (r *runner) pulse() {
	if err := r.deps.Healthy.Pulse(); err != nil {
		if r.healthyErrs++; r.healthyErrs == 1 || r.healthyErrs%1000 == 0 {
			r.log.Error("healthy output cannot be pulsed: the external watchdog will signal the room as dead", "err", err, "times", r.healthyErrs)
		}
	}
}

// power turns a power status reading into the system fault of its source:
// mains lost is a warning, cleared when mains returns; the battery low is
// critical, and the loop then stops cleanly (ErrBatteryLow). A status line
// that cannot be read raises its fault too (louder, never quieter), but
// does not stop the room.
func (r *runner) power(rd device.Reading) {
	f := controller.Fault{At: r.clock.Now(), Active: rd.Level != controller.LevelInactive}
	switch rd.Power {
	case device.PowerMains:
		f.Source, f.Severity, f.Detail = contract.SourceMains, controller.SeverityWarning, "mains power lost; the room runs on its battery"
	case device.PowerBattery:
		f.Source, f.Severity, f.Detail = contract.SourceBattery, controller.SeverityCritical, "the battery is nearly flat: roomd stops before the power goes"
	default:
		return
	}
	if rd.Level == controller.LevelUnknown {
		f.Detail = rd.Power.String() + " status cannot be read: " + rd.Detail
	}
	r.log.Warn("power status", "input", rd.Power.String(), "level", rd.Level.String())
	r.step(f)
	if rd.Power == device.PowerBattery && rd.Level == controller.LevelActive {
		r.batteryLow = true
	}
}

type tick struct{}

// readingAt maps a reading's instant (device clock) onto the time axis: now
// on the axis minus how long ago the level was established, within reason.
func (r *runner) readingAt(rd device.Reading) time.Time {
	now := r.clock.Now()
	if rd.At.IsZero() {
		return now
	}
	ago := r.deps.Clock.Since(rd.At)
	if ago < 0 || ago > time.Minute {
		return now
	}
	return now.Add(-ago)
}

// arm sets the one timer for the controller's next deadline.
func (r *runner) arm(t Timer) {
	d, ok := r.ctl.NextDeadline()
	if !ok {
		t.Stop()
		return
	}
	t.Reset(max(d.Sub(r.clock.Now()), 0))
}

// step feeds one event to the controller and carries out its actions, then
// the events those raised.
func (r *runner) step(ev controller.Event) {
	r.do(r.ctl.Step(ev))
	r.drainFollow()
}

func (r *runner) drainFollow() {
	for len(r.follow) > 0 {
		ev := r.follow[0]
		r.follow = r.follow[1:]
		r.do(r.ctl.Step(ev))
	}
}

func (r *runner) raise(f controller.Fault) {
	if r.clock != nil {
		f.At = r.clock.Now()
	}
	r.follow = append(r.follow, f)
}

// do carries out one step: its outputs at once, then one journal entry for
// its records, state and replies (journal.EntryOf), appended by commit.
func (r *runner) do(rd controller.Ready) {
	for _, o := range rd.Outputs {
		if err := r.deps.Outputs.Set(o.Output, o.Mode, o.Pulses); err != nil {
			r.log.Error("set output failed", "output", o.Output, "mode", o.Mode, "err", err)
			r.raise(controller.Fault{Source: contract.SourceOutputs, Active: true, Severity: controller.SeverityCritical,
				ClearOnAck: true, Detail: fmt.Sprintf("set %s %s: %v", o.Output, o.Mode, err)})
		}
	}
	for _, rec := range rd.Records {
		r.logRecord(rec)
	}
	for _, rep := range rd.Replies {
		r.logReply(rep)
	}
	if e := journal.EntryOf(r.ctl, rd); !e.Empty() {
		r.batch = append(r.batch, e)
	}
}

// commit appends the batch with one sync, and raises or clears the journal
// faults according to how the disk took it.
func (r *runner) commit() {
	r.drainFollow() // faults raised outside a step (the sync check) are steps too
	for {
		batch := r.batch
		r.batch = nil
		if len(batch) == 0 && !r.degraded {
			return
		}
		err := r.j.Append(batch...)
		var de *journal.DiskError
		switch {
		case err == nil:
			r.degraded = false
			if r.diskFault {
				r.diskFault = false
				r.log.Info("the disk takes the journal again")
				r.raise(controller.Fault{Source: contract.SourceJournalWrite, Active: false})
			}
		case errors.As(err, &de):
			r.degraded = true
			if !r.diskFault {
				r.diskFault = true
				r.log.Error("the disk refuses the journal; steps are kept in memory and published from there", "err", err)
				r.raise(controller.Fault{Source: contract.SourceJournalWrite, Active: true, Severity: controller.SeverityCritical,
					Detail: "the journal cannot be written: " + de.Err.Error()})
			}
			if de.Dropped > r.dropped {
				n := de.Dropped - r.dropped
				r.dropped = de.Dropped
				r.log.Error("journal: steps dropped from memory while the disk refused them", "dropped", n)
				r.raise(controller.Fault{Source: contract.SourceJournalLost, Active: true, Severity: controller.SeverityCritical,
					ClearOnAck: true, Detail: fmt.Sprintf("%d steps were dropped from memory while the disk refused the journal", de.Dropped)})
			}
		default:
			r.log.Error("journal append failed", "err", err)
		}
		over := r.j.OverLimit()
		if over != r.fullFault {
			r.fullFault = over
			if over {
				r.raise(controller.Fault{Source: contract.SourceJournalFull, Active: true, Severity: controller.SeverityCritical,
					Detail: "the journal holds more undelivered steps than its size bound: the broker has not acknowledged for long"})
			} else {
				r.raise(controller.Fault{Source: contract.SourceJournalFull, Active: false})
			}
		}
		if len(r.follow) == 0 {
			return
		}
		r.drainFollow() // the faults just raised are steps too
	}
}

// journalNotices raises what the journal noticed while running (its
// directory deleted or replaced, and rewritten) as a critical fault.
func (r *runner) journalNotices() {
	for _, n := range r.j.Notices() {
		r.log.Error("journal: "+n, "dir", r.journalDir())
		r.raise(controller.Fault{Source: contract.SourceJournal, Active: true, Severity: controller.SeverityCritical,
			ClearOnAck: true, Detail: n})
	}
}

func (r *runner) journalDir() string {
	if d, ok := r.j.(interface{ Dir() string }); ok {
		return d.Dir()
	}
	return ""
}

// checkSync raises a warning of source journal_sync when the card syncs
// slowly (p99 above SyncP99Limit) or stalled (one sync above
// journal.SyncStall) and clears it when the recent syncs are fine again
// (p99 under the limit, and SyncMinSamples syncs since the last stall).
func (r *runner) checkSync() {
	st := r.j.SyncStats()
	if st == nil {
		return
	}
	s := st.Last(SyncJudged)
	// A sync still running past the stall limit is a stall that has not
	// ended: a card that stopped answering never returns from it.
	hung := s.Pending > journal.SyncStall
	stalled := s.Stalls > r.stalls || hung
	r.stalls = s.Stalls
	if stalled {
		r.stallAt = s.Count
	}
	slow := s.Recent >= SyncMinSamples && s.P99 > SyncP99Limit
	switch {
	case (slow || stalled) && !r.slowFault:
		r.slowFault = true
		disk := journal.DiskOf(r.journalDir())
		detail := fmt.Sprintf("the disk %s syncs slowly: p99 %s over the last %d syncs (limit %s), longest %s; alerts do not wait for it, but a failing card loses the journal: replace it",
			disk, s.P99.Round(time.Millisecond), s.Recent, SyncP99Limit, s.RecentMax.Round(time.Millisecond))
		switch {
		case hung:
			detail = fmt.Sprintf("the disk %s stalled: a sync has not returned for %s; alerts do not wait for it, but what the room wrote since is not safe on the card: replace it",
				disk, s.Pending.Round(time.Second))
		case stalled:
			detail = fmt.Sprintf("the disk %s stalled: one sync took %s (p99 %s over the last %d); alerts do not wait for it, but a failing card loses the journal: replace it",
				disk, s.RecentMax.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Recent)
		}
		r.log.Warn("journal: " + detail)
		r.raise(controller.Fault{Source: contract.SourceJournalSync, Active: true, Severity: controller.SeverityWarning, Detail: detail})
	case r.slowFault && !slow && !stalled && s.Count-r.stallAt >= SyncMinSamples:
		r.slowFault = false
		r.log.Info("journal: the disk syncs in time again", "p99", s.P99)
		r.raise(controller.Fault{Source: contract.SourceJournalSync, Active: false})
	}
}

// checkpoint records the time axis in the journal's head.
func (r *runner) checkpoint() {
	b, err := json.Marshal(timebase.HeadBlob{Room: r.opts.Room, Clock: r.clock.Checkpoint()})
	if err == nil {
		err = r.j.SetBlob(b)
	}
	if err != nil {
		r.log.Warn("time axis checkpoint not recorded", "err", err)
	}
}

func (r *runner) logReply(rep controller.Reply) {
	if rep.OK() {
		r.log.Info("command done", "action", rep.Action)
	} else {
		r.log.Info("command refused", "action", rep.Action, "code", rep.Code)
	}
	r.log.Debug("reply", "request", rep.RequestID, "message", rep.Message)
}

// logRecord logs a record without visit ids or details above debug level.
func (r *runner) logRecord(rec controller.Record) {
	attrs := []any{"seq", rec.Seq, "type", rec.Type}
	if rec.Alert != nil {
		attrs = append(attrs, "alert_kind", rec.Alert.Kind, "severity", rec.Alert.Severity)
		if rec.Alert.Source != "" {
			attrs = append(attrs, "source", rec.Alert.Source)
		}
	}
	lvl := slog.LevelInfo
	if rec.Type.IsAnnouncement() {
		lvl = slog.LevelWarn
	}
	r.log.Log(context.Background(), lvl, "record", attrs...)
	r.log.Debug("record detail", "seq", rec.Seq, "visit", rec.VisitID, "reason", rec.EndReason, "by", rec.By)
}

func (r *runner) notify(state string) {
	if err := r.deps.Notifier.Notify(state); err != nil {
		r.log.Warn("service manager notification failed", "state", state, "err", err)
	}
}

// shutdown ends the run: outputs safe, inputs stopped within the shutdown
// timeout. Every step is already in the journal.
func (r *runner) shutdown(stopInputs context.CancelFunc, inputsDone <-chan error) error {
	r.log.Info("shutting down")
	r.notify("STOPPING=1")
	if err := r.deps.Outputs.Safe(); err != nil {
		r.log.Error("outputs to safe state failed", "err", err)
	}
	stopInputs()
	r.checkpoint()
	if inputsDone != nil {
		t := time.NewTimer(r.opts.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-inputsDone:
		case <-t.C:
			r.log.Warn("input backend did not stop in time")
		}
	}
	r.log.Info("stopped", "seq", r.ctl.State().Seq)
	return nil
}
