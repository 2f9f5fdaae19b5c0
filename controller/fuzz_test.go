package controller_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
)

// fuzzPolicy is short enough that random sequences reach every rule.
func fuzzPolicy(vacancy bool) controller.Policy {
	return controller.Policy{
		Name: "fuzz", MaxDuration: 2 * time.Hour, Warnings: []time.Duration{10 * time.Minute, 2 * time.Minute},
		EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute, ReannounceAfter: 5 * time.Minute,
		LockGrace: 10 * time.Second, EndOnVacancy: vacancy, VacancyHold: 2 * time.Minute, VacateTimeout: 10 * time.Minute,
		WelfareCheckEvery: 30 * time.Minute, InspectionAfterVisit: true, FunctionTestEvery: 3 * time.Hour,
	}
}

var (
	fuzzPoints    = []string{"bed", "toilet", "pull_cord"}
	fuzzOperators = []string{"", "guard-1", "booking-2", controller.OnSite}
)

// decodeEvents turns fuzz bytes into a sequence of events, three bytes each:
// a time step, a kind and an argument.
func decodeEvents(data []byte) []controller.Event {
	var evs []controller.Event
	at := t0
	for i := 0; i+2 < len(data); i += 3 {
		step, kind, arg := data[i], data[i+1], data[i+2]
		at = at.Add(time.Duration(step) * 7 * time.Second)
		by := fuzzOperators[int(kind/16)%len(fuzzOperators)]
		level := controller.Level(arg/8) % 3
		switch kind % 13 {
		case 0, 1:
			in := controller.Inputs[int(arg)%len(controller.Inputs)]
			ev := controller.InputChanged{At: at, Input: in, Level: level}
			if in == controller.InputPanic {
				ev.Point = fuzzPoints[int(arg/32)%len(fuzzPoints)]
			}
			evs = append(evs, ev)
		case 2:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionStartVisit,
				VisitID: "v", Duration: time.Duration(arg) * time.Minute, By: by})
		case 3:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionExtendVisit,
				Duration: time.Duration(int(arg)-64) * time.Minute, By: by})
		case 4:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionEndVisit, By: by})
		case 5:
			kindOf := controller.AlertKinds[int(arg)%len(controller.AlertKinds)]
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionAckAlert,
				AlertID: fmt.Sprintf("%s-%d", kindOf, arg%16), By: by})
		case 6:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionSetService, InService: arg%2 == 0, Reason: "r", By: by})
		case 7:
			evs = append(evs, controller.Tick{At: at.Add(time.Duration(arg) * time.Minute)})
			at = at.Add(time.Duration(arg) * time.Minute)
		case 8:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionSetReady, By: by})
		case 9:
			evs = append(evs, controller.InputChanged{At: at, Input: controller.InputStaff, Level: level})
		case 10:
			evs = append(evs, controller.FeedbackChanged{At: at, Output: controller.Outputs[int(arg)%len(controller.Outputs)], Follows: arg%3 != 0})
		case 11:
			evs = append(evs, controller.Fault{At: at, Source: []string{"outbox", "state"}[arg%2], Active: arg%3 != 0,
				Severity: controller.Severity(arg/4) % 3, ClearOnAck: arg%5 == 0})
		case 12:
			evs = append(evs, fuzzTest(at, by, arg))
		}
	}
	return evs
}

// fuzzTest is a function test from one byte: its mode, which lines pass,
// and a panic point; by may be one the controller ignores (empty, on_site).
func fuzzTest(at time.Time, by string, arg byte) controller.FunctionTested {
	mode := controller.TestModes[int(arg)%len(controller.TestModes)]
	lines := []controller.LineResult{
		{Input: controller.InputPanic, Point: fuzzPoints[int(arg/2)%len(fuzzPoints)], Passed: true},
		{Output: controller.OutputAlarmSounder, Passed: true},
	}
	if mode == controller.TestFull {
		lines = append(lines, controller.LineResult{Input: controller.InputDoor, Passed: true})
	}
	passed := arg&24 != 24 // one test in four fails, on one line
	if !passed {
		l := &lines[int(arg/32)%len(lines)]
		l.Passed, l.Fault = false, controller.LineFaults[int(arg/64)%len(controller.LineFaults)]
	}
	return controller.FunctionTested{At: at, By: by, Test: controller.FunctionTest{Mode: mode, Passed: passed, Version: "fuzz", Lines: lines}}
}

// drive steps c through evs, ticking at every deadline on the way as a
// driver would, and returns every action. check, if not nil, sees each step
// with the state just before it.
func drive(t *testing.T, c *controller.Controller, evs []controller.Event, check func(before controller.State, ev controller.Event, acts []any)) []any {
	if check == nil {
		return driveSteps(t, c, evs, nil, nil)
	}
	var before controller.State
	return driveSteps(t, c, evs, func() { before = c.State() }, func(ev controller.Event, acts []any) { check(before, ev, acts) })
}

// driveSteps is drive with two optional hooks: pre before each step, post after it.
func driveSteps(t *testing.T, c *controller.Controller, evs []controller.Event, pre func(), post func(controller.Event, []any)) []any {
	var all []any
	step := func(ev controller.Event) {
		if pre != nil {
			pre()
		}
		acts := flat(c.Step(ev))
		if post != nil {
			post(ev, acts)
		}
		all = append(all, acts...)
	}
	for _, ev := range evs {
		at := eventTime(ev)
		for n := 0; ; n++ {
			if n > 100000 {
				t.Fatalf("driver loop does not end before %v at %v: state %+v", ev, c.Now(), c.Snapshot())
			}
			d, ok := c.NextDeadline()
			if !ok || d.After(at) {
				break
			}
			step(controller.Tick{At: d})
			if d2, ok2 := c.NextDeadline(); ok2 && !d2.After(d) {
				t.Fatalf("deadline %v did not move after a tick at it", d)
			}
		}
		step(ev)
	}
	return all
}

func eventTime(ev controller.Event) time.Time {
	switch e := ev.(type) {
	case controller.InputChanged:
		return e.At
	case controller.Command:
		return e.At
	case controller.Tick:
		return e.At
	case controller.Fault:
		return e.At
	case controller.FeedbackChanged:
		return e.At
	case controller.ClockCorrected:
		return e.At
	case controller.FunctionTested:
		return e.At
	}
	panic("unknown event")
}

// blocking lists the alerts of st that must keep a visit from starting.
func blocking(st controller.State) []string {
	var ids []string
	for _, a := range st.Alerts {
		switch {
		case a.Kind == controller.AlertPanic, a.Kind == controller.AlertDoorLocked,
			(a.Kind == controller.AlertSensorFault || a.Kind == controller.AlertSystemFault || a.Kind == controller.AlertOutputFault) &&
				a.Severity == controller.SeverityCritical:
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// invariants checks every property that must hold after each step of any
// event sequence under policy p.
type invariants struct {
	t             *testing.T
	p             controller.Policy
	c             *controller.Controller
	deadline      time.Time
	lockSince     time.Time // since when the lock reads locked; zero if not
	inVisitSince  time.Time
	lastAnnounced map[string]time.Time // alert id -> its latest announcement
	phases        map[[2]controller.Phase]bool
	// testedSince is when the room first started, lastFull the last passed
	// full function test recorded (rule 16).
	testedSince, lastFull time.Time
}

// newInvariants checks c from now on; what rule 16 counts from comes from
// c's snapshot (its first start and last passed full test).
func newInvariants(t *testing.T, p controller.Policy, c *controller.Controller) *invariants {
	tests := c.Snapshot().Tests
	return &invariants{t: t, p: p, c: c, lastAnnounced: map[string]time.Time{}, phases: map[[2]controller.Phase]bool{},
		testedSince: tests.Since, lastFull: tests.LastFull}
}

func (iv *invariants) check(before controller.State, ev controller.Event, acts []any) {
	t, p := iv.t, iv.p
	st := iv.c.State()
	var records []controller.Record
	for _, a := range acts {
		if r, ok := a.(controller.Record); ok {
			records = append(records, r)
		}
	}
	for _, r := range records {
		switch {
		case r.Type == controller.EventVisitStarted, r.Type == controller.EventVisitExtended:
			iv.deadline = r.EndsAt
		case r.Type == controller.EventAlertRaised && r.Alert.Kind == controller.AlertTimeUp && r.At.Before(iv.deadline):
			t.Fatalf("time_up at %v before the deadline %v", r.At, iv.deadline)
		}
		if r.Type.IsAnnouncement() {
			iv.lastAnnounced[r.Alert.ID] = r.At
		}
		if r.Type == controller.EventAlertRaised && r.By != "" {
			t.Fatalf("alert_raised by %q: alerts are raised by the room", r.By)
		}
		if r.By == controller.OnSite {
			if e, ok := ev.(controller.InputChanged); !ok || e.Input != controller.InputStaff || e.Level != controller.LevelActive {
				t.Fatalf("record %v by on_site, caused by %#v", r.Type, ev)
			}
		}
		if cmd, ok := ev.(controller.Command); ok && r.By != cmd.By && r.Type != controller.EventAlertRaised && !r.At.Before(cmd.At) {
			t.Fatalf("record %v of command by %q says by %q", r.Type, cmd.By, r.By)
		}
		if !r.DueAt.IsZero() {
			t.Fatalf("record %v carries due_at %v outside a restart", r.Type, r.DueAt)
		}
		if r.Type == controller.EventFunctionTest {
			e, ok := ev.(controller.FunctionTested)
			if !ok || e.Validate() != nil || r.By != e.By || !reflect.DeepEqual(*r.Test, e.Test) {
				t.Fatalf("function_test %+v by %q from %#v", r.Test, r.By, ev)
			}
			if r.Test.Passed && r.Test.Mode == controller.TestFull {
				iv.lastFull = r.At
			}
		}
	}
	if e, ok := ev.(controller.FunctionTested); ok && e.Validate() != nil {
		for _, a := range acts {
			if _, isOut := a.(controller.SetOutput); !isOut {
				t.Fatalf("a function test the controller cannot read caused %#v", a)
			}
		}
	}
	// Rule 16: function_test_due is active exactly while the last passed
	// full test (or, with none, the first start) is function_test_every old.
	if p.FunctionTestEvery > 0 {
		base := iv.lastFull
		if base.IsZero() {
			base = iv.testedSince
		}
		due := !st.At.Before(base.Add(p.FunctionTestEvery))
		if due != hasAlert(st, controller.AlertFunctionTestDue) {
			t.Fatalf("at %v, last full test %v, first start %v: function_test_due active %t, want %t",
				st.At, iv.lastFull, iv.testedSince, !due, due)
		}
	}
	// Repetition: an unacknowledged critical alert is announced at least once every repeat_every.
	for _, a := range st.Alerts {
		if a.Severity == controller.SeverityCritical && !a.Acked {
			last, ok := iv.lastAnnounced[a.ID]
			if !ok || st.At.Sub(last) > p.RepeatEvery {
				t.Fatalf("alert %s unacknowledged and critical, last announced %v, now %v", a.ID, last, st.At)
			}
		}
	}
	// Readiness: start_visit never succeeds while a blocking alert is active.
	if cmd, ok := ev.(controller.Command); ok && cmd.Action == controller.ActionStartVisit {
		for _, a := range acts {
			if r, ok := a.(controller.Reply); ok && r.OK() {
				if b := blocking(before); len(b) > 0 {
					t.Fatalf("visit started while %v blocked it", b)
				}
				if before.Phase == controller.PhaseInspection {
					t.Fatalf("visit started during an inspection")
				}
			}
		}
	}
	// Signals: the sounder is on exactly while an unacknowledged critical alert is active.
	unacked := false
	for _, a := range st.Alerts {
		unacked = unacked || (a.Severity == controller.SeverityCritical && !a.Acked)
	}
	if sounder := st.Outputs[controller.OutputAlarmSounder].Mode; unacked != (sounder != controller.ModeOff) {
		t.Fatalf("sounder %s with an unacknowledged critical alert: %t (%+v)", sounder, unacked, st.Alerts)
	}
	// Privacy: presence appears in the state only outside private phases,
	// and a presence change in one emits nothing.
	if st.Phase.Private() != (st.Presence == nil) {
		t.Fatalf("presence in state during phase %s: %v", st.Phase, st.Presence)
	}
	if e, ok := ev.(controller.InputChanged); ok {
		switch e.Input {
		case controller.InputPanic:
			if e.Level == controller.LevelActive && !hasPanicAt(st, e.Point) {
				t.Fatalf("panic point %s pressed at %v but no panic alert names it", e.Point, e.At)
			}
		case controller.InputPresence:
			if before.Phase.Private() && st.Phase.Private() && len(acts) != 0 {
				t.Fatalf("presence change during phase %s produced %v", st.Phase, acts)
			}
		case controller.InputLock:
			if e.Level == controller.LevelActive {
				if iv.lockSince.IsZero() {
					iv.lockSince = e.At
				}
			} else {
				iv.lockSince = time.Time{}
			}
		}
	}
	if st.Phase.InVisit() {
		if iv.inVisitSince.IsZero() {
			iv.inVisitSince = st.Visit.StartedAt
		}
	} else {
		iv.inVisitSince = time.Time{}
	}
	// A lock engaged during a visit for longer than the grace is door_locked.
	if !iv.lockSince.IsZero() && st.Phase.InVisit() {
		from := iv.lockSince
		if iv.inVisitSince.After(from) {
			from = iv.inVisitSince
		}
		if st.At.Sub(from) >= p.LockGrace && !hasAlert(st, controller.AlertDoorLocked) {
			t.Fatalf("lock engaged since %v in a visit since %v, at %v no door_locked", iv.lockSince, iv.inVisitSince, st.At)
		}
	}
	// Phases change only along PhaseTransitions.
	if before.Phase != st.Phase {
		iv.phases[[2]controller.Phase{before.Phase, st.Phase}] = true
		if !slices.Contains(controller.PhaseTransitions[before.Phase], st.Phase) {
			// A step may chain two moves (overtime, then ended): accept a path of two.
			ok := false
			for _, mid := range controller.PhaseTransitions[before.Phase] {
				ok = ok || slices.Contains(controller.PhaseTransitions[mid], st.Phase)
			}
			if !ok {
				t.Fatalf("phase %s -> %s is not a transition", before.Phase, st.Phase)
			}
		}
	}
	// The state derived from the snapshot alone is the controller's.
	snap := iv.c.Snapshot()
	later := st.At.Add(17 * time.Second)
	if got, want := snap.StateAt(later), iv.c.StateAt(later); !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot.StateAt differs from Controller.StateAt:\n%+v\n%+v", got, want)
	}
}

func FuzzController(f *testing.F) {
	f.Add([]byte{0, 2, 60, 10, 0, 1, 200, 7, 200, 3, 0, 9, 1, 5, 0})
	f.Add([]byte{0, 0, 9, 0, 2, 90, 5, 0, 17, 100, 7, 100, 0, 4, 0})
	f.Add([]byte{1, 0, 3, 1, 2, 30, 200, 7, 50, 1, 5, 0, 1, 1, 19})
	f.Add([]byte{0, 1, 35, 1, 0, 3, 0, 2, 60, 9, 10, 0, 40, 7, 30, 0, 4, 0, 2, 8, 0, 3, 9, 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		evs := decodeEvents(data)
		p := fuzzPolicy(data != nil && len(data)%2 == 0)
		c, _, err := controller.New(p, t0)
		if err != nil {
			t.Fatal(err)
		}
		iv := newInvariants(t, p, c)
		drive(t, c, evs, iv.check)
	})
}

// FuzzRestart checks rule 15: a restart after a random downtime announces
// nothing dated before the restart, at most one record per alert, and
// leaves no timer due in the past.
func FuzzRestart(f *testing.F) {
	f.Add([]byte{0, 2, 60, 10, 0, 1, 200, 7, 200, 3, 0, 9}, uint16(600))
	f.Add([]byte{0, 1, 35, 1, 2, 30, 0, 0, 9}, uint16(7200))
	f.Fuzz(func(t *testing.T, data []byte, down uint16) {
		p := fuzzPolicy(true)
		c, _, err := controller.New(p, t0)
		require.NoError(t, err)
		drive(t, c, decodeEvents(data), nil)
		snap := c.Snapshot()
		at := snap.Now.Add(time.Duration(down) * time.Second)
		r, rd, err := controller.Restore(p, snap, at)
		require.NoError(t, err)
		acts := flat(rd)
		perAlert := map[string]int{}
		for i, a := range acts {
			rec, ok := a.(controller.Record)
			if !ok {
				continue
			}
			require.Equal(t, at, rec.At, "record %v dated inside the downtime", rec.Type)
			if i == 0 {
				require.Equal(t, controller.EventControllerStarted, rec.Type, "controller_started comes first")
			}
			if !rec.DueAt.IsZero() {
				require.True(t, rec.DueAt.Before(at) && !rec.DueAt.Before(snap.Now), "due %v outside the downtime %v..%v", rec.DueAt, snap.Now, at)
			}
			if rec.Alert != nil {
				perAlert[rec.Alert.ID]++
				require.Equal(t, 1, perAlert[rec.Alert.ID], "alert %s announced twice at the restart", rec.Alert.ID)
			}
		}
		if d, ok := r.NextDeadline(); ok {
			require.True(t, d.After(at), "deadline %v not after the restart %v", d, at)
		}
		// The restored room goes on keeping every invariant.
		iv := newInvariants(t, p, r)
		for _, a := range r.State().Alerts {
			if !a.Next.IsZero() && a.Severity == controller.SeverityCritical && !a.Acked {
				iv.lastAnnounced[a.ID] = a.Next.Add(-p.RepeatEvery)
			}
		}
		drive(t, r, shiftEvents(decodeEvents(data), at.Sub(t0)), iv.check)
	})
}

// shiftEvents moves every event by d.
func shiftEvents(evs []controller.Event, d time.Duration) []controller.Event {
	out := make([]controller.Event, len(evs))
	for i, ev := range evs {
		switch e := ev.(type) {
		case controller.InputChanged:
			e.At = e.At.Add(d)
			out[i] = e
		case controller.Command:
			e.At = e.At.Add(d)
			out[i] = e
		case controller.Tick:
			e.At = e.At.Add(d)
			out[i] = e
		case controller.Fault:
			e.At = e.At.Add(d)
			out[i] = e
		case controller.FeedbackChanged:
			e.At = e.At.Add(d)
			out[i] = e
		case controller.ClockCorrected:
			e.At = e.At.Add(d)
			out[i] = e
		case controller.FunctionTested:
			e.At = e.At.Add(d)
			out[i] = e
		}
	}
	return out
}

func hasAlert(st controller.State, k controller.AlertKind) bool {
	for _, a := range st.Alerts {
		if a.Kind == k {
			return true
		}
	}
	return false
}

func hasPanicAt(st controller.State, point string) bool {
	if point == "" {
		point = controller.DefaultPanicPoint
	}
	for _, a := range st.Alerts {
		if a.Kind == controller.AlertPanic && a.Point == point {
			return true
		}
	}
	return false
}

// FuzzPrivacy checks rule 9 as a property: presence changes that happen only
// inside private phases (visits and inspections) and leave presence as they
// found it change no action at all. The first run, without the extra
// changes, finds the private intervals; the second puts presence changes
// inside them (from noise) and restores the level before each ends. It logs
// whether it compared.
func FuzzPrivacy(f *testing.F) {
	f.Add([]byte{0, 2, 60, 10, 0, 2, 200, 7, 200, 3, 0, 9, 1, 5, 0, 30, 4, 0}, []byte{3, 10, 0, 200})
	f.Add([]byte{0, 2, 90, 1, 0, 1, 5, 4, 0}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte, noise []byte) {
		if privacyCompare(t, data, noise) {
			t.Log("compared two runs")
		} else {
			t.Log("no private phase: nothing to compare")
		}
	})
}

// decodePrivacyEvents is the input shape of the privacy property: visits
// start, end and are inspected often, so that most inputs have private
// phases to put presence changes in. Presence is read once at the start, so
// that restoring "the level before" is always a level that was read, and a
// visit starts at once.
func decodePrivacyEvents(data []byte) []controller.Event {
	evs := []controller.Event{
		controller.InputChanged{At: t0, Input: controller.InputPresence, Level: controller.LevelInactive},
		controller.Command{At: t0, RequestID: "p", Action: controller.ActionStartVisit, VisitID: "v", Duration: time.Hour},
	}
	at := t0
	for i := 0; i+2 < len(data); i += 3 {
		step, kind, arg := data[i], data[i+1], data[i+2]
		at = at.Add(time.Duration(step) * 7 * time.Second)
		level := controller.Level(arg/8) % 3
		switch kind % 10 {
		case 0:
			evs = append(evs, controller.Command{At: at, RequestID: "p", Action: controller.ActionStartVisit,
				VisitID: "v", Duration: time.Duration(1+int(arg)%120) * time.Minute})
		case 1:
			evs = append(evs, controller.Command{At: at, RequestID: "p", Action: controller.ActionEndVisit})
		case 2:
			evs = append(evs, controller.Command{At: at, RequestID: "p", Action: controller.ActionSetReady})
		case 3:
			evs = append(evs, controller.InputChanged{At: at, Input: controller.InputStaff, Level: level})
		case 4:
			evs = append(evs, controller.InputChanged{At: at, Input: controller.InputDoor, Level: level})
		case 5:
			evs = append(evs, controller.InputChanged{At: at, Input: controller.InputLock, Level: level})
		case 6:
			evs = append(evs, controller.InputChanged{At: at, Input: controller.InputPresence, Level: level})
		case 7:
			evs = append(evs, controller.Tick{At: at.Add(time.Duration(arg%64) * time.Minute)})
			at = at.Add(time.Duration(arg%64) * time.Minute)
		case 8:
			evs = append(evs, controller.Command{At: at, RequestID: "p", Action: controller.ActionExtendVisit,
				Duration: time.Duration(int(arg)-64) * time.Minute})
		case 9:
			kindOf := controller.AlertKinds[int(arg)%len(controller.AlertKinds)]
			evs = append(evs, controller.Command{At: at, RequestID: "p", Action: controller.ActionAckAlert,
				AlertID: fmt.Sprintf("%s-%d", kindOf, arg%8)})
		}
	}
	return evs
}

// privacyCompare runs the privacy property on one input and reports whether
// it compared two runs (false when no private phase arose to put noise in).
func privacyCompare(t *testing.T, data, noise []byte) bool {
	p := fuzzPolicy(false)
	base := decodePrivacyEvents(data)

	type interval struct {
		from, to time.Time // to is zero for an interval still open at the end
		level    controller.Level
		detail   string
	}
	var private []interval
	presence, detail := controller.LevelInactive, ""
	c, rd, err := controller.New(p, t0)
	require.NoError(t, err)
	phase := c.Phase()
	a := append(flat(rd), driveSteps(t, c, base, nil, func(ev controller.Event, _ []any) {
		before, after := phase, c.Phase()
		phase = after
		if e, ok := ev.(controller.InputChanged); ok && e.Input == controller.InputPresence {
			presence, detail = e.Level, e.Detail
		}
		at := eventTime(ev)
		switch {
		case !before.Private() && after.Private():
			private = append(private, interval{from: at})
		case before.Private() && !after.Private():
			// A visit ends on a command or a press, both events, never on a
			// timer (the vacancy rule is off).
			private[len(private)-1].to = at
			private[len(private)-1].level, private[len(private)-1].detail = presence, detail
		}
	})...)
	if len(private) == 0 || len(noise) == 0 {
		return false
	}
	last := eventTime(base[len(base)-1])
	var extra []controller.Event
	for i, b := range noise {
		iv := private[i%len(private)]
		to := iv.to
		if to.IsZero() {
			to = last
		}
		span := to.Sub(iv.from) - 3*time.Millisecond
		if span <= 0 {
			continue
		}
		at := iv.from.Add(time.Millisecond + time.Duration(uint64(b)*uint64(span)/256))
		extra = append(extra, controller.InputChanged{At: at, Input: controller.InputPresence, Level: controller.Level(b % 3), Detail: "noise"})
	}
	if len(extra) == 0 {
		return false
	}
	// Restore the level each closed interval ended with, just before it ends:
	// through another level first, so that the restoring reading is a change
	// and carries the base run's detail.
	for _, iv := range private {
		if !iv.to.IsZero() && iv.to.Sub(iv.from) > 3*time.Millisecond {
			other := controller.LevelInactive
			if iv.level == controller.LevelInactive {
				other = controller.LevelActive
			}
			extra = append(extra,
				controller.InputChanged{At: iv.to.Add(-2 * time.Millisecond), Input: controller.InputPresence, Level: other, Detail: "noise"},
				controller.InputChanged{At: iv.to.Add(-time.Millisecond), Input: controller.InputPresence, Level: iv.level, Detail: iv.detail})
		}
	}
	slices.SortStableFunc(extra, func(x, y controller.Event) int { return eventTime(x).Compare(eventTime(y)) })
	noisy := mergeByTime(base, extra)

	c2, rd2, err := controller.New(p, t0)
	require.NoError(t, err)
	b := append(flat(rd2), drive(t, c2, noisy, nil)...)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("presence during private phases changed the actions (first difference at line %d):\n%s",
			firstDiff(dump(a), dump(b)), diffContext(dump(a), dump(b)))
	}
	return true
}

// TestPrivacyComparesMostInputs runs the privacy property on 1,000 random
// inputs and requires that most of them really compare two runs.
func TestPrivacyComparesMostInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 1000
	compared := 0
	for range n {
		data := make([]byte, 3*(5+rng.IntN(40)))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		noise := make([]byte, 1+rng.IntN(12))
		for i := range noise {
			noise[i] = byte(rng.IntN(256))
		}
		if privacyCompare(t, data, noise) {
			compared++
		}
	}
	share := float64(compared) / n
	t.Logf("privacy property compared two runs on %d of %d inputs (%.0f%%)", compared, n, 100*share)
	require.Greater(t, share, 0.6, "too few inputs reach a private phase to compare")
}

// dump renders actions in full, one a line, alerts included.
func dump(acts []any) string {
	var b strings.Builder
	for _, a := range acts {
		if r, ok := a.(controller.Record); ok && r.Alert != nil {
			al := *r.Alert
			r.Alert = nil
			fmt.Fprintf(&b, "%+v %+v\n", r, al)
			continue
		}
		fmt.Fprintf(&b, "%+v\n", a)
	}
	return b.String()
}

// firstDiff returns the first line (from 1) where a and b differ.
func firstDiff(a, b string) int {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// diffContext shows a few lines of a and b around their first difference.
func diffContext(a, b string) string {
	i := firstDiff(a, b) - 1
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	from := max(i-3, 0)
	return "without:\n  " + strings.Join(la[from:min(i+3, len(la))], "\n  ") +
		"\nwith:\n  " + strings.Join(lb[from:min(i+3, len(lb))], "\n  ")
}

// mergeByTime merges two time-ordered event lists, a's events first at equal times.
func mergeByTime(a, b []controller.Event) []controller.Event {
	out := make([]controller.Event, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j >= len(b) || i < len(a) && !eventTime(b[j]).Before(eventTime(a[i])) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out
}

// TestFunctionTestInvariantReach runs the controller property on 300
// random inputs and requires that many of them reach both sides of the
// rule 16 invariant: the reminder raised, and cleared by a passed full test.
func TestFunctionTestInvariantReach(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 17))
	const n = 300
	raised, cleared := 0, 0
	for range n {
		data := make([]byte, 3*(5+rng.IntN(60)))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		p := fuzzPolicy(len(data)%2 == 0)
		c, _, err := controller.New(p, t0)
		require.NoError(t, err)
		iv := newInvariants(t, p, c)
		var sawRaised, sawCleared bool
		drive(t, c, decodeEvents(data), func(before controller.State, ev controller.Event, acts []any) {
			iv.check(before, ev, acts)
			for _, r := range records(acts) {
				if r.Alert != nil && r.Alert.Kind == controller.AlertFunctionTestDue {
					sawRaised = sawRaised || r.Type == controller.EventAlertRaised
					sawCleared = sawCleared || r.Type == controller.EventAlertCleared
				}
			}
		})
		if sawRaised {
			raised++
		}
		if sawCleared {
			cleared++
		}
	}
	t.Logf("function_test_due raised in %d and cleared by a test in %d of %d inputs", raised, cleared, n)
	require.Greater(t, raised, n/3, "too few inputs reach the due date")
	require.Greater(t, cleared, n/10, "too few inputs clear the reminder with a passed full test")
}
