package scenario

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Env is a running room as a scenario sees it: the simulated sensors, the
// command topic, and what the room announced, in wire form.
type Env struct {
	// Now reads the room's time axis. Scenario time zero is Now when Play starts.
	Now func() time.Time
	// Speed is how many times faster than real time Now runs; 0 means 1.
	Speed float64
	// Slack widens every `at` window on both sides, for a replay whose
	// messages travel through a broker while time is compressed. Zero
	// in-process.
	Slack time.Duration
	// Control changes the simulated sensors.
	Control func(contract.SimControl) error
	// Send sends a command (RequestID set) as the booking system or a guard does.
	Send func(controller.Command) error
	// Events delivers every event the room announced (the events topic).
	Events <-chan contract.EventMessage
	// Replies delivers the answers to commands; replies to requests Play
	// did not send are ignored.
	Replies <-chan contract.ReplyMessage
	// Observe, if set, is called with every transcript entry as it is added.
	Observe func(Entry)
}

// Entry is one line of a run's transcript.
type Entry struct {
	Offset  time.Duration // scenario time
	Event   *contract.EventMessage
	Reply   *contract.ReplyMessage
	Step    *Step  // a step that ran
	Failure string // an expectation or step that failed
}

// String renders the entry as a transcript line.
func (e Entry) String() string {
	at := FormatOffset(e.Offset)
	switch {
	case e.Event != nil:
		return fmt.Sprintf("%s  event  %s", at, Describe(e.Event))
	case e.Reply != nil:
		if e.Reply.OK {
			return fmt.Sprintf("%s  reply  %s ok", at, e.Reply.Action)
		}
		code := ""
		if e.Reply.Error != nil {
			code = e.Reply.Error.Code + ": " + e.Reply.Error.Message
		}
		return fmt.Sprintf("%s  reply  %s refused (%s)", at, e.Reply.Action, code)
	case e.Step != nil:
		return fmt.Sprintf("%s  step   %s", at, e.Step.Describe())
	default:
		return fmt.Sprintf("%s  FAIL   %s", at, e.Failure)
	}
}

// FormatOffset renders a scenario time as h:mm:ss (negative as -h:mm:ss).
func FormatOffset(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Truncate(time.Second)
	return fmt.Sprintf("%s%d:%02d:%02d", sign, int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// Describe renders an event in one short line.
func Describe(ev *contract.EventMessage) string {
	var b strings.Builder
	b.WriteString(ev.Type)
	if a := ev.Alert; a != nil {
		fmt.Fprintf(&b, " %s %s", a.ID, a.Severity)
		if a.Input != "" {
			fmt.Fprintf(&b, " input=%s", a.Input)
		}
		if a.Source != "" {
			fmt.Fprintf(&b, " source=%s", a.Source)
		}
	}
	if ev.VisitID != "" {
		fmt.Fprintf(&b, " visit=%s", ev.VisitID)
	}
	if ev.DurationS != nil {
		fmt.Fprintf(&b, " duration=%s", time.Duration(*ev.DurationS)*time.Second)
	}
	if ev.RemainingS != nil {
		fmt.Fprintf(&b, " warning=%d remaining=%s", ev.Warning, time.Duration(*ev.RemainingS)*time.Second)
	}
	if ev.AddedS != nil {
		fmt.Fprintf(&b, " added=%s", time.Duration(*ev.AddedS)*time.Second)
	}
	if ev.Reason != "" {
		fmt.Fprintf(&b, " reason=%s", ev.Reason)
	}
	if ev.By != "" {
		fmt.Fprintf(&b, " by=%s", ev.By)
	}
	return b.String()
}

// Describe renders the step's action in one short line.
func (s *Step) Describe() string {
	var act string
	switch {
	case s.Command != nil:
		c := s.Command.Command
		act = c.Action.String()
		switch c.Action {
		case controller.ActionStartVisit:
			act += fmt.Sprintf(" %s %s", c.VisitID, c.Duration)
		case controller.ActionExtendVisit:
			act += " by " + c.Duration.String()
		case controller.ActionAckAlert:
			act += " " + c.AlertID
		case controller.ActionSetService:
			act += fmt.Sprintf(" in_service=%t", c.InService)
		}
	case s.Control != nil:
		act = strings.TrimSpace(string(s.Control.Encode()))
	}
	switch {
	case act == "":
		return s.Note
	case s.Note != "":
		return act + "  (" + s.Note + ")"
	}
	return act
}

// Result is the outcome of a run.
type Result struct {
	Scenario   *Scenario
	Transcript []Entry
	Failures   []string
	// End is the scenario time at which the run ended.
	End time.Duration
}

// OK reports whether every expectation was met and nothing forbidden came.
func (r *Result) OK() bool { return len(r.Failures) == 0 }

// Report renders the failures, then the transcript.
func (r *Result) Report() string {
	var b strings.Builder
	name := r.Scenario.Name
	if r.OK() {
		fmt.Fprintf(&b, "scenario %q (%s): ok, ended at %s\n", name, r.Scenario.Source, FormatOffset(r.End))
	} else {
		fmt.Fprintf(&b, "scenario %q (%s): %d failures\n", name, r.Scenario.Source, len(r.Failures))
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
	}
	b.WriteString("transcript:\n")
	for _, e := range r.Transcript {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// player is the state of one Play.
type player struct {
	sc     *Scenario
	env    Env
	zero   time.Time
	speed  float64
	res    *Result
	events []*contract.EventMessage // received, in order
	// alerts maps a kind to the id of its latest active alert, as received.
	alerts map[string]string
	// pending maps request ids to the command step that sent them.
	pending map[string]int
	ordered []int // indexes of ordered expectations
	nextExp int   // index into ordered
}

// Play runs sc against env until it completes or times out, or ctx ends.
// Failures are in the result; Play itself does not fail.
func Play(ctx context.Context, sc *Scenario, env Env) *Result {
	pl := &player{sc: sc, env: env, zero: env.Now(), speed: env.Speed, res: &Result{Scenario: sc},
		alerts: map[string]string{}, pending: map[string]int{}}
	if pl.speed <= 0 {
		pl.speed = 1
	}
	for i, e := range sc.Expect {
		if e.Count == 0 {
			pl.ordered = append(pl.ordered, i)
		}
	}
	events, replies := env.Events, env.Replies
	stepIdx, mark := 0, 0 // mark: events before it do not trigger the current step
	completeAt := time.Duration(-1)
	for {
		now := pl.offset()
		for stepIdx < len(sc.Steps) {
			due, ok := pl.due(&sc.Steps[stepIdx], mark)
			if !ok || due > now {
				break
			}
			pl.run(stepIdx)
			stepIdx++
			mark = len(pl.events)
			now = pl.offset()
		}
		complete := stepIdx == len(sc.Steps) && pl.nextExp == len(pl.ordered) && len(pl.pending) == 0
		if complete && completeAt < 0 {
			completeAt = now
		}
		if complete && now >= completeAt+sc.Settle {
			break
		}
		if now >= sc.Timeout {
			break
		}
		next := sc.Timeout
		if complete {
			next = min(next, completeAt+sc.Settle)
		}
		if stepIdx < len(sc.Steps) {
			if due, ok := pl.due(&sc.Steps[stepIdx], mark); ok {
				next = min(next, due)
			}
		}
		timer := time.NewTimer(time.Duration(float64(max(next-now, 0)) / pl.speed))
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				pl.fail("the room's event stream ended")
			} else {
				pl.event(&ev)
			}
		case rep, ok := <-replies:
			if !ok {
				replies = nil
			} else {
				pl.reply(&rep)
			}
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			pl.fail(fmt.Sprintf("run stopped: %v", ctx.Err()))
			pl.finish(stepIdx)
			return pl.res
		}
		timer.Stop()
	}
	pl.finish(stepIdx)
	return pl.res
}

func (pl *player) offset() time.Duration { return pl.env.Now().Sub(pl.zero) }

func (pl *player) add(e Entry) {
	pl.res.Transcript = append(pl.res.Transcript, e)
	if pl.env.Observe != nil {
		pl.env.Observe(e)
	}
}

func (pl *player) fail(msg string) {
	pl.res.Failures = append(pl.res.Failures, msg)
	pl.add(Entry{Offset: pl.offset(), Failure: msg})
}

// due returns the scenario time at which step s is due, and false while it
// waits for an event not yet received.
func (pl *player) due(s *Step, mark int) (time.Duration, bool) {
	if s.After == nil {
		return s.At, true
	}
	for _, ev := range pl.events[mark:] {
		if s.After.Matches(ev) {
			return ev.At.Sub(pl.zero) + s.Wait, true
		}
	}
	return 0, false
}

func (pl *player) where(i int) string {
	return fmt.Sprintf("steps[%d] (%s:%d)", i, pl.sc.Source, pl.sc.Steps[i].Line)
}

func (pl *player) run(i int) {
	s := &pl.sc.Steps[i]
	switch {
	case s.Control != nil:
		pl.add(Entry{Offset: pl.offset(), Step: s})
		if err := pl.env.Control(*s.Control); err != nil {
			pl.fail(fmt.Sprintf("%s: %v", pl.where(i), err))
		}
	case s.Command != nil:
		c := s.Command.Command
		c.RequestID = fmt.Sprintf("scenario-step-%d", i)
		if c.Action == controller.ActionAckAlert && s.Command.AlertKind != 0 {
			id, ok := pl.alerts[s.Command.AlertKind.String()]
			if !ok {
				pl.fail(fmt.Sprintf("%s: ack_alert: no active %s alert received so far", pl.where(i), s.Command.AlertKind))
				return
			}
			c.AlertID = id
		}
		shown := *s
		shown.Command = &CommandStep{Command: c}
		pl.add(Entry{Offset: pl.offset(), Step: &shown})
		pl.pending[c.RequestID] = i
		if err := pl.env.Send(c); err != nil {
			delete(pl.pending, c.RequestID)
			pl.fail(fmt.Sprintf("%s: send %s: %v", pl.where(i), c.Action, err))
		}
	default:
		pl.add(Entry{Offset: pl.offset(), Step: s})
	}
}

func (pl *player) event(ev *contract.EventMessage) {
	pl.events = append(pl.events, ev)
	off := ev.At.Sub(pl.zero)
	pl.add(Entry{Offset: off, Event: ev})
	if a := ev.Alert; a != nil {
		if ev.Type == controller.EventAlertCleared.String() {
			if pl.alerts[a.Kind] == a.ID {
				delete(pl.alerts, a.Kind)
			}
		} else {
			pl.alerts[a.Kind] = a.ID
		}
	}
	for _, f := range pl.sc.Forbid {
		if f.Matches(ev) {
			pl.fail(fmt.Sprintf("forbidden %s came at %s: %s", f, FormatOffset(off), Describe(ev)))
		}
	}
	if pl.nextExp >= len(pl.ordered) {
		return
	}
	i := pl.ordered[pl.nextExp]
	e := pl.sc.Expect[i]
	if !e.Matches(ev) {
		return
	}
	if e.HasAt {
		w := e.Within + pl.env.Slack
		if off < e.At-w {
			return // an earlier one; the expected one may still come
		}
		if off > e.At+w {
			pl.fail(fmt.Sprintf("expect[%d] (%s:%d) %s: expected at %s ±%s, came at %s",
				i, pl.sc.Source, e.Line, e.Pattern, FormatOffset(e.At), w, FormatOffset(off)))
		}
	}
	pl.nextExp++
}

func (pl *player) reply(rep *contract.ReplyMessage) {
	i, ok := pl.pending[rep.RequestID]
	if !ok {
		return
	}
	delete(pl.pending, rep.RequestID)
	pl.add(Entry{Offset: pl.offset(), Reply: rep})
	want := pl.sc.Steps[i].Command.Want
	got := controller.CodeOK
	msg := ""
	if !rep.OK {
		got = controller.CodeBadRequest
		if rep.Error != nil {
			got, msg = controller.Code(rep.Error.Code), rep.Error.Message
		}
	}
	if got == want {
		return
	}
	if want == controller.CodeOK {
		pl.fail(fmt.Sprintf("%s: %s refused: %s: %s", pl.where(i), rep.Action, got, msg))
	} else if got == controller.CodeOK {
		pl.fail(fmt.Sprintf("%s: %s accepted, want refusal %s", pl.where(i), rep.Action, want))
	} else {
		pl.fail(fmt.Sprintf("%s: %s refused with %s (%s), want %s", pl.where(i), rep.Action, got, msg, want))
	}
}

// finish records what never happened.
func (pl *player) finish(stepIdx int) {
	pl.res.End = pl.offset()
	end := FormatOffset(pl.res.End)
	for i := stepIdx; i < len(pl.sc.Steps); i++ {
		s := &pl.sc.Steps[i]
		why := "its time never came"
		if s.After != nil {
			why = fmt.Sprintf("%s never came", s.After)
		}
		pl.fail(fmt.Sprintf("%s did not run: %s (run ended at %s)", pl.where(i), why, end))
	}
	for _, i := range pl.pending {
		pl.fail(fmt.Sprintf("%s: no reply to %s", pl.where(i), pl.sc.Steps[i].Command.Command.Action))
	}
	for _, i := range pl.ordered[pl.nextExp:] {
		e := pl.sc.Expect[i]
		when := ""
		if e.HasAt {
			when = " at " + FormatOffset(e.At)
		}
		var seen []string
		for _, ev := range pl.events {
			if e.Matches(ev) {
				seen = append(seen, FormatOffset(ev.At.Sub(pl.zero)))
			}
		}
		also := ""
		if e.HasAt && len(seen) > 0 {
			when += fmt.Sprintf(" ±%s", e.Within+pl.env.Slack)
			also = "; matching events came at " + strings.Join(seen, ", ")
		}
		pl.fail(fmt.Sprintf("expect[%d] (%s:%d) %s%s never came (run ended at %s)%s", i, pl.sc.Source, e.Line, e.Pattern, when, end, also))
	}
	for i, e := range pl.sc.Expect {
		if e.Count == 0 {
			continue
		}
		n := 0
		for _, ev := range pl.events {
			if e.Matches(ev) {
				n++
			}
		}
		if n != e.Count {
			pl.fail(fmt.Sprintf("expect[%d] (%s:%d) %s: want exactly %d, got %d", i, pl.sc.Source, e.Line, e.Pattern, e.Count, n))
		}
	}
}
