package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/device"
)

// Defaults for Options fields left zero.
const (
	DefaultShutdownTimeout = 5 * time.Second
	DefaultCheckpointEvery = 5 * time.Minute
	DefaultRetryEvery      = 5 * time.Second
	// MaxUnsent bounds the records kept while the outbox refuses them; past
	// it the oldest are dropped (and logged). The state still shows every
	// active alert.
	MaxUnsent = 5000
)

// Options configure Run.
type Options struct {
	Room     string
	Policy   controller.Policy
	StateDir string // holds StateFileName; must exist and be writable

	// Heartbeat is the fixed interval at which the state is republished,
	// whatever else happens. Required.
	Heartbeat time.Duration
	// Watchdog is the interval of WATCHDOG=1 pings sent from the loop (half
	// of systemd's WatchdogSec, see WatchdogInterval); 0 sends none.
	Watchdog time.Duration
	// ShutdownTimeout bounds the shutdown (link close, input stop). Zero:
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// CheckpointEvery: with no state change for this long the state file is
	// rewritten anyway, so the time axis checkpoint stays recent. Zero:
	// DefaultCheckpointEvery.
	CheckpointEvery time.Duration
	// RetryEvery is how often records refused by the outbox are offered
	// again. Zero: DefaultRetryEvery.
	RetryEvery time.Duration
	// MinPlausible is the earliest believable wall clock time after a
	// reboot. Zero: DefaultMinPlausible.
	MinPlausible time.Time
}

// Deps are the loop's collaborators.
type Deps struct {
	Inputs  InputSource
	Outputs OutputDriver
	Link    Link
	// Clock sources the time axis; nil means timebase.System{}. Under
	// testing/synctest a Sources built on time.Now runs on fake time.
	Clock    timebase.Sources
	Notifier Notifier     // nil: no service manager
	Logger   *slog.Logger // nil: discard
	// Speed is how many times faster than real time Clock's boot clock runs;
	// zero means 1 (production). Only a compressed replay sets it (the demo,
	// roomd scenario), so that a visit passes in seconds under the real
	// policy: the loop waits for the controller's next deadline Speed times
	// less real time and scales the age of a reading likewise. Heartbeat,
	// retry and watchdog intervals stay in real time.
	Speed float64
	// Faults, optional, carries faults found by collaborators (for example
	// MQTTLink's reply cache); the loop stamps and steps them.
	Faults <-chan controller.Fault
}

func (o *Options) check() error {
	var errs []error
	if o.Room == "" {
		errs = append(errs, errors.New("room is empty"))
	}
	if o.StateDir == "" {
		errs = append(errs, errors.New("state dir is empty"))
	}
	if o.Heartbeat <= 0 {
		errs = append(errs, fmt.Errorf("heartbeat must be positive, got %s", o.Heartbeat))
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
	if o.MinPlausible.IsZero() {
		o.MinPlausible = DefaultMinPlausible
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
	if d.Link == nil {
		errs = append(errs, errors.New("no link"))
	}
	if d.Clock == nil {
		d.Clock = timebase.System{}
	}
	switch {
	case d.Speed == 0:
		d.Speed = 1
	case !(d.Speed >= 1e-3 && d.Speed <= 1e6):
		errs = append(errs, fmt.Errorf("speed must be within [0.001, 1e6] (0 means 1), got %g", d.Speed))
	}
	if d.Notifier == nil {
		d.Notifier = nopNotifier{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Run runs the room until ctx ends, then shuts down within
// opts.ShutdownTimeout: outputs safe, STOPPING=1, state persisted, link
// closed (offline published, outbox flushed or kept). It returns nil after a
// clean shutdown and an error only when the room cannot start at all (bad
// options, unusable state directory, invalid policy). The outputs are put in
// their safe state on every return path, including a panic.
//
// An unusable state file is not such an error: the room starts fresh with a
// critical system_fault (source "state") and the file is renamed to
// state.json.corrupt-<time>.
func Run(ctx context.Context, opts Options, deps Deps) (err error) {
	if err := errors.Join(opts.check(), deps.check()); err != nil {
		return fmt.Errorf("run room %q: %w", opts.Room, err)
	}
	r := &runner{opts: opts, deps: deps, log: deps.Logger, statePath: StatePath(opts.StateDir)}
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
	opts      Options
	deps      Deps
	log       *slog.Logger
	statePath string

	clock *timebase.Clock
	ctl   *controller.Controller

	// unsent are records not yet accepted by the outbox (see PersistedState).
	unsent      []controller.Record
	outboxFault bool // the outbox fault is raised
	writeFault  bool // the state_write fault is raised
	lastPersist time.Time
	// follow are events the loop itself raises while carrying out a step
	// (faults); they are stepped right after it.
	follow []controller.Event
}

// start loads the state, resumes the time axis and builds the controller.
func (r *runner) start() error {
	if err := checkDir(r.opts.StateDir); err != nil {
		return err
	}
	prev, loadErr := LoadState(r.statePath)
	var stateFault *controller.Fault
	switch {
	case loadErr == nil && prev.Room != r.opts.Room:
		loadErr = fmt.Errorf("state file %s belongs to room %q", r.statePath, prev.Room)
		fallthrough
	case loadErr != nil && !isNotExist(loadErr):
		r.log.Error("state file unusable; starting fresh with a system fault", "path", r.statePath, "err", loadErr)
		to, err := setAside(r.statePath, time.Now())
		if err != nil {
			r.log.Error("cannot set the unusable state file aside", "err", err)
		} else if to != "" {
			r.log.Warn("unusable state file kept for examination", "path", to)
		}
		stateFault = &controller.Fault{Source: SourceState, Active: true, Severity: controller.SeverityCritical,
			ClearOnAck: true, Detail: "state file unusable; started fresh: " + loadErr.Error()}
		prev = nil
	case loadErr != nil:
		r.log.Info("no state file; first start", "path", r.statePath)
	}

	var anchor *timebase.Anchor
	var lastAxis time.Time
	if prev != nil {
		anchor = &prev.Clock.Anchor
		lastAxis = prev.Clock.Axis
		if prev.Controller.Now.After(lastAxis) {
			lastAxis = prev.Controller.Now
		}
	}
	clock, notice := timebase.Resume(anchor, lastAxis, r.deps.Clock, r.opts.MinPlausible)
	r.clock = clock
	now := clock.Now()

	var acts []controller.Action
	var err error
	if prev != nil {
		r.ctl, acts, err = controller.Restore(r.opts.Policy, prev.Controller, now)
		if err != nil {
			r.log.Error("state file snapshot cannot be restored; starting fresh with a system fault", "err", err)
			if to, aerr := setAside(r.statePath, time.Now()); aerr != nil {
				r.log.Error("cannot set the unusable state file aside", "err", aerr)
			} else if to != "" {
				r.log.Warn("unusable state file kept for examination", "path", to)
			}
			stateFault = &controller.Fault{Source: SourceState, Active: true, Severity: controller.SeverityCritical,
				ClearOnAck: true, Detail: "state snapshot unusable; started fresh: " + err.Error()}
			prev = nil
		} else {
			r.unsent = append(r.unsent, prev.Unsent...)
			r.log.Info("state restored", "phase", prev.Controller.Phase, "seq", prev.Controller.Seq, "unsent", len(prev.Unsent))
		}
	}
	if prev == nil {
		r.ctl, acts, err = controller.New(r.opts.Policy, now)
		if err != nil {
			return fmt.Errorf("start controller: %w", err)
		}
	}
	if stateFault != nil {
		stateFault.At = now
		r.follow = append(r.follow, *stateFault)
	}
	if notice != timebase.NoticeNone {
		r.log.Warn("time axis could not simply continue", "notice", notice.String())
		r.follow = append(r.follow, controller.Fault{At: now, Source: SourceClock, Active: true,
			Severity: controller.SeverityWarning, ClearOnAck: true,
			Detail: "time axis: " + notice.String() + "; time while roomd was down may be missing from timers"})
	}
	r.do(acts)
	r.drainFollow()
	return nil
}

// loop is the one goroutine that owns the controller.
func (r *runner) loop(ctx context.Context) error {
	readings := make(chan device.Reading, 64)
	inCtx, stopInputs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInputs()
	inputsDone := make(chan error, 1)
	go func() { inputsDone <- r.deps.Inputs.Run(inCtx, readings) }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	r.arm(timer)
	heartbeat := time.NewTicker(r.opts.Heartbeat)
	defer heartbeat.Stop()
	var watchdog <-chan time.Time
	if r.opts.Watchdog > 0 {
		t := time.NewTicker(r.opts.Watchdog)
		defer t.Stop()
		watchdog = t.C
	}
	retry := time.NewTicker(r.opts.RetryEvery)
	defer retry.Stop()
	commands := r.deps.Link.Commands()

	r.notify("READY=1") // start published the first state
	r.log.Info("room running", "room", r.opts.Room, "phase", r.ctl.State().Phase, "policy", r.opts.Policy.Name)

	for {
		select {
		case <-ctx.Done():
			return r.shutdown(stopInputs, inputsDone)
		case rd := <-readings:
			r.step(rd.Event(r.readingAt(rd)))
		case cmd, ok := <-commands:
			if !ok {
				commands = nil
				r.log.Warn("link command channel closed; no more commands")
				continue
			}
			cmd.At = r.clock.Now()
			r.log.Debug("command", "action", cmd.Action, "request", cmd.RequestID, "visit", cmd.VisitID)
			r.step(cmd)
		case <-timer.C:
			r.step(controller.Tick{At: r.clock.Now()})
		case <-heartbeat.C:
			r.heartbeat()
		case <-retry.C:
			if len(r.unsent) > 0 {
				r.flushUnsent()
				r.drainFollow()
			}
		case <-watchdog:
			r.notify("WATCHDOG=1")
		case f := <-r.deps.Faults:
			f.At = r.clock.Now()
			r.log.Warn("fault reported", "source", f.Source, "active", f.Active)
			r.step(f)
		case err := <-inputsDone:
			inputsDone = nil
			if err == nil {
				err = errors.New("input backend stopped")
			}
			r.log.Error("input backend failed", "err", err)
			r.step(controller.Fault{At: r.clock.Now(), Source: SourceInputs, Active: true,
				Severity: controller.SeverityCritical, Detail: err.Error()})
		}
		r.arm(timer)
	}
}

// readingAt maps a reading's instant (device clock) onto the time axis: now
// on the axis minus how long ago the level was established, within reason.
func (r *runner) readingAt(rd device.Reading) time.Time {
	now := r.clock.Now()
	if rd.At.IsZero() {
		return now
	}
	ago := time.Since(rd.At)
	if ago < 0 || ago > time.Minute {
		return now
	}
	return now.Add(-time.Duration(float64(ago) * r.deps.Speed))
}

// arm sets the one timer for the controller's next deadline.
func (r *runner) arm(t *time.Timer) {
	d, ok := r.ctl.NextDeadline()
	if !ok {
		t.Stop()
		return
	}
	t.Reset(time.Duration(float64(max(d.Sub(r.clock.Now()), 0)) / r.deps.Speed))
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
	f.At = r.clock.Now()
	r.follow = append(r.follow, f)
}

// do carries out one step's actions: outputs at once, then the snapshot and
// the step's records persisted together, then the records handed to the
// outbox, the state published and the replies sent.
func (r *runner) do(acts []controller.Action) {
	changed := false
	var replies []controller.Reply
	for _, a := range acts {
		switch a := a.(type) {
		case controller.SetOutput:
			if err := r.deps.Outputs.Set(a.Output, a.Mode, a.Pulses); err != nil {
				r.log.Error("set output failed", "output", a.Output, "mode", a.Mode, "err", err)
				r.raise(controller.Fault{Source: SourceOutputs, Active: true, Severity: controller.SeverityCritical,
					ClearOnAck: true, Detail: fmt.Sprintf("set %s %s: %v", a.Output, a.Mode, err)})
			}
		case controller.Announce:
			r.logRecord(a.Record)
			r.unsent = append(r.unsent, a.Record)
		case controller.StateChanged:
			changed = true
		case controller.Reply:
			replies = append(replies, a)
		}
	}
	if len(r.unsent) > MaxUnsent {
		n := len(r.unsent) - MaxUnsent
		r.log.Error("outbox refuses records for too long; dropping the oldest", "dropped", n,
			"first_seq", r.unsent[0].Seq, "last_seq", r.unsent[n-1].Seq)
		r.unsent = append([]controller.Record(nil), r.unsent[n:]...)
	}
	if changed {
		r.persist()
	}
	r.flushUnsent()
	if changed {
		r.publishState()
	}
	for _, rep := range replies {
		if rep.OK() {
			r.log.Info("command done", "action", rep.Action)
		} else {
			r.log.Info("command refused", "action", rep.Action, "code", rep.Code)
		}
		r.log.Debug("reply", "request", rep.RequestID, "message", rep.Message)
		if err := r.deps.Link.Reply(rep, r.ctl.State()); err != nil {
			r.log.Warn("reply failed", "action", rep.Action, "err", err)
		}
	}
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

// persist writes the snapshot, the axis checkpoint and the unsent records.
func (r *runner) persist() {
	st := &PersistedState{
		Version:    StateVersion,
		Room:       r.opts.Room,
		Clock:      r.clock.Checkpoint(),
		Controller: r.ctl.Snapshot(),
		Unsent:     r.unsent,
	}
	start := time.Now()
	err := SaveState(r.statePath, st)
	r.log.Debug("state persisted", "took", time.Since(start), "err", err)
	if err != nil {
		r.log.Error("state file write failed", "err", err)
		if !r.writeFault {
			r.writeFault = true
			r.raise(controller.Fault{Source: SourceStateWrite, Active: true, Severity: controller.SeverityCritical,
				Detail: "state file cannot be written: " + err.Error()})
		}
		return
	}
	r.lastPersist = st.Clock.Axis
	if r.writeFault {
		r.writeFault = false
		r.raise(controller.Fault{Source: SourceStateWrite, Active: false})
	}
}

// flushUnsent offers the unsent records to the outbox, oldest first.
func (r *runner) flushUnsent() {
	n := 0
	var err error
	for _, rec := range r.unsent {
		if err = r.deps.Link.Publish(rec); err != nil {
			break
		}
		n++
	}
	if n > 0 {
		r.unsent = append(r.unsent[:0:0], r.unsent[n:]...)
	}
	if err != nil {
		if !r.outboxFault {
			r.log.Error("outbox refuses records; keeping them", "unsent", len(r.unsent), "err", err)
			r.outboxFault = true
			detail := "records cannot be stored for delivery: " + err.Error()
			if errors.Is(err, ErrOutboxFull) {
				detail = "outbox full; records kept in memory and state file"
			}
			r.raise(controller.Fault{Source: SourceOutbox, Active: true, Severity: controller.SeverityCritical, Detail: detail})
		}
		return
	}
	if r.outboxFault {
		r.log.Info("outbox accepts records again")
		r.outboxFault = false
		r.raise(controller.Fault{Source: SourceOutbox, Active: false})
	}
}

func (r *runner) publishState() {
	if err := r.deps.Link.PublishState(r.ctl.StateAt(r.clock.Now())); err != nil {
		r.log.Warn("publish state failed", "err", err)
	}
}

// heartbeat republishes the state at a fixed interval and keeps the axis
// checkpoint in the state file recent.
func (r *runner) heartbeat() {
	now := r.clock.Now()
	if now.Sub(r.lastPersist) >= r.opts.CheckpointEvery {
		r.persist()
	}
	r.flushUnsent()
	r.drainFollow()
	r.publishState()
}

func (r *runner) notify(state string) {
	if err := r.deps.Notifier.Notify(state); err != nil {
		r.log.Warn("service manager notification failed", "state", state, "err", err)
	}
}

// shutdown ends the run: outputs safe, state persisted, inputs stopped and
// the link closed, all within the shutdown timeout.
func (r *runner) shutdown(stopInputs context.CancelFunc, inputsDone <-chan error) error {
	r.log.Info("shutting down")
	r.notify("STOPPING=1")
	if err := r.deps.Outputs.Safe(); err != nil {
		r.log.Error("outputs to safe state failed", "err", err)
	}
	stopInputs()
	r.flushUnsent()
	r.persist()
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.ShutdownTimeout)
	defer cancel()
	if err := r.deps.Link.Close(ctx); err != nil {
		r.log.Warn("link close incomplete; undelivered records stay in the outbox", "err", err)
	}
	if inputsDone != nil {
		select {
		case <-inputsDone:
		case <-ctx.Done():
			r.log.Warn("input backend did not stop in time")
		}
	}
	r.log.Info("stopped", "seq", r.ctl.State().Seq)
	return nil
}
