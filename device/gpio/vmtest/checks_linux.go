package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device"
	"github.com/roomd/roomd/wallclock"
)

const (
	// expectWithin bounds the wait for one debounced reading under TCG.
	expectWithin = 2 * time.Second
	// quietFor is how long "no further reading" is watched for.
	quietFor = 5*debounce + 100*time.Millisecond
)

// roomCheck drives the simulated lines and watches what the backend reports.
type roomCheck struct {
	sim      *simChip
	room     device.Backend
	readings chan device.Reading
	maxLat   time.Duration // slowest stimulus-to-reading latency seen
}

func checkBackend(sim *simChip, logger *slog.Logger) error {
	if err := presetPulls(sim); err != nil {
		return err
	}
	room, err := openRoom(logger)
	if err != nil {
		return fmt.Errorf("open room on %q: %w", simLabel, err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = room.Close()
		}
	}()
	rc := &roomCheck{sim: sim, room: room, readings: make(chan device.Reading, 64)}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- room.Run(ctx, rc.readings) }()

	steps := []struct {
		name string
		fn   func() error
	}{
		{"initial readings inactive (biases applied)", rc.initial},
		{"outputs start inactive", func() error { return rc.waitOutputs(false) }},
		{"re-reads send nothing new", rc.settle},
		{"door open/close", func() error { return rc.toggle(offDoor) }},
		{"lock locked/unlocked", func() error { return rc.toggle(offLock) }},
		{"panic point bed (active-low) pressed/released", func() error { return rc.toggle(offPanic) }},
		{"panic point toilet pressed/released", func() error { return rc.toggle(offPanic2) }},
		{"panic points are read each alone", rc.panicPoints},
		{"staff pressed/released", func() error { return rc.toggle(offStaff) }},
		{"presence from PIR0", func() error { return rc.toggle(offPIR0) }},
		{"presence from PIR1", func() error { return rc.toggle(offPIR1) }},
		{"presence combines PIR0 and PIR1", rc.presenceCombined},
		{"bounce burst settles once", rc.retrySlow(rc.bounce)},
		{"glitch shorter than debounce is ignored", rc.retrySlow(rc.glitch)},
		{"flapping line is unknown, then recovers", rc.retrySlow(rc.flap)},
		{"outputs drive lines", rc.outputs},
		{"blink toggles the line", rc.blink},
		{"Safe turns every output off (active-low too)", rc.safe},
		{"sounder read back follows through FB", rc.feedbackFollows},
		{"stuck sounder relay found, then recovers", rc.feedbackStuck},
	}
	for _, s := range steps {
		t0 := wallclock.Now()
		select {
		case err := <-runErr:
			return fmt.Errorf("before %s: Run returned early: %w", s.name, err)
		default:
		}
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Printf("vmtest: ok   %-42s %s\n", s.name, wallclock.Since(t0).Round(time.Millisecond))
	}

	// Close with every output on: all must end inactive.
	for _, o := range outputLines {
		if err := rc.set(o.out, controller.ModeOn); err != nil {
			return fmt.Errorf("close: %w", err)
		}
	}
	if err := rc.waitOutputs(true); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	// Close while Run is still running: Close must stop it.
	closed = true
	if err := room.Close(); err != nil {
		return fmt.Errorf("Close: %w", err)
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, context.Canceled) {
			return fmt.Errorf("Run returned %v after Close, want context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		return errors.New("Run did not return within 3s of Close")
	}
	// The sim shows a released line at its pull: INUSE and ALARM pulled
	// down, WARN (active-low) pulled up, so this also holds for a Close
	// that releases without driving off first; it catches a Close that
	// leaves an output held on.
	if err := rc.waitOutputs(false); err != nil {
		return fmt.Errorf("after Close: %w", err)
	}
	fmt.Printf("vmtest: ok   %-42s\n", "Close stops Run and leaves outputs inactive")
	fmt.Printf("vmtest: slowest stimulus-to-reading latency %s (debounce %s)\n", rc.maxLat.Round(time.Millisecond), debounce)
	return nil
}

// roleOf returns the role, panic point and polarity of input line off.
func roleOf(off int) (controller.Input, string, bool) {
	for _, l := range inputLines {
		if l.off == off {
			return l.role, l.point, l.activeLow
		}
	}
	panic(fmt.Sprintf("line %d is not an input of the layout", off))
}

// drive sets input line off to its active or inactive electrical level.
func (rc *roomCheck) drive(off int, active bool) error {
	_, _, activeLow := roleOf(off)
	return rc.sim.pull(off, active != activeLow)
}

// describe names a reading for an error message.
func describe(r device.Reading) string {
	if r.Output != 0 {
		return fmt.Sprintf("%s read back follows=%v (%q)", r.Output, r.Follows, r.Detail)
	}
	name := r.Input.String()
	if r.Point != "" {
		name += " " + r.Point
	}
	return fmt.Sprintf("%s %s (%q)", name, r.Input.Describe(r.Level), r.Detail)
}

func (rc *roomCheck) next(within time.Duration) (device.Reading, bool) {
	select {
	case r := <-rc.readings:
		return r, true
	case <-time.After(within):
		return device.Reading{}, false
	}
}

// expect requires the next reading to be role (panic point point) at
// level, established no earlier than the stimulus at since.
func (rc *roomCheck) expect(role controller.Input, point string, level controller.Level, since time.Time) error {
	r, ok := rc.next(expectWithin)
	if !ok {
		return fmt.Errorf("no reading within %s, want %s %s %s", expectWithin, role, point, role.Describe(level))
	}
	lat := wallclock.Since(since)
	if r.Output != 0 || r.Input != role || r.Point != point || r.Level != level {
		return fmt.Errorf("got %s, want %s %s %s", describe(r), role, point, role.Describe(level))
	}
	if r.At.IsZero() {
		return fmt.Errorf("%s %s: reading has no At", role, role.Describe(level))
	}
	if r.At.Before(since) || r.At.After(wallclock.Now()) {
		return fmt.Errorf("%s %s: At %s is outside stimulus %s .. now", role, role.Describe(level),
			r.At.Format(time.StampMicro), since.Format(time.StampMicro))
	}
	if lat > rc.maxLat {
		rc.maxLat = lat
	}
	return nil
}

// quiet requires no reading for quietFor.
func (rc *roomCheck) quiet() error {
	if r, ok := rc.next(quietFor); ok {
		return fmt.Errorf("unexpected reading %s", describe(r))
	}
	return nil
}

// source is what one reading is about: an input role and panic point, or
// the supervision of an output.
type source struct {
	role   controller.Input
	point  string
	output controller.Output
}

// initial waits for the first level of every role and panic point, and
// the first verdict of the supervised sounder; each input must be inactive
// (presetPulls put LOCK and PANIC where only the bias fixes them), the
// sounder (off, FB low) must follow.
func (rc *roomCheck) initial() error {
	want := map[source]bool{{output: controller.OutputAlarmSounder}: true}
	for _, l := range inputLines {
		want[source{role: l.role, point: l.point}] = true
	}
	deadline := wallclock.Now().Add(5 * time.Second)
	for len(want) > 0 {
		r, ok := rc.next(wallclock.Until(deadline))
		if !ok {
			return fmt.Errorf("no initial reading for %v within 5s", want)
		}
		k := source{role: r.Input, point: r.Point, output: r.Output}
		if !want[k] {
			return fmt.Errorf("second initial reading %s", describe(r))
		}
		if r.Output != 0 && !r.Follows || r.Output == 0 && r.Level != controller.LevelInactive {
			return fmt.Errorf("initial reading %s, want inactive (or following)", describe(r))
		}
		delete(want, k)
	}
	return nil
}

// settle drives every input inactive again, which changes nothing, and
// requires silence for longer than a re-read period.
func (rc *roomCheck) settle() error {
	for _, l := range inputLines {
		if err := rc.drive(l.off, false); err != nil {
			return err
		}
	}
	return rc.quiet()
}

// toggle drives one input active then inactive, each seen exactly once.
func (rc *roomCheck) toggle(off int) error {
	role, point, _ := roleOf(off)
	for _, active := range []bool{true, false} {
		t0 := wallclock.Now()
		if err := rc.drive(off, active); err != nil {
			return err
		}
		level := controller.LevelInactive
		if active {
			level = controller.LevelActive
		}
		if err := rc.expect(role, point, level, t0); err != nil {
			return err
		}
	}
	return rc.quiet()
}

// panicPoints: two points pressed, then released one by one; each is
// reported alone, none hides the other.
func (rc *roomCheck) panicPoints() error {
	steps := []struct {
		off    int
		active bool
	}{{offPanic, true}, {offPanic2, true}, {offPanic, false}, {offPanic2, false}}
	for _, st := range steps {
		t0 := wallclock.Now()
		if err := rc.drive(st.off, st.active); err != nil {
			return err
		}
		_, point, _ := roleOf(st.off)
		level := controller.LevelInactive
		if st.active {
			level = controller.LevelActive
		}
		if err := rc.expect(controller.InputPanic, point, level, t0); err != nil {
			return err
		}
	}
	return rc.quiet()
}

// presenceCombined: presence is active while either PIR is.
func (rc *roomCheck) presenceCombined() error {
	t0 := wallclock.Now()
	if err := rc.drive(offPIR0, true); err != nil {
		return err
	}
	if err := rc.expect(controller.InputPresence, "", controller.LevelActive, t0); err != nil {
		return err
	}
	if err := rc.drive(offPIR1, true); err != nil {
		return err
	}
	// The combined reading does not change when PIR1 joins, so nothing
	// tells when its edge was taken; a handover in the room is never
	// instantaneous either. Give PIR1's edge (15-20 ms under TCG) and its
	// debounce time to settle before PIR0 lets go.
	time.Sleep(3 * debounce)
	if err := rc.drive(offPIR0, false); err != nil {
		return err
	}
	if err := rc.quiet(); err != nil {
		return fmt.Errorf("PIR1 still active: %w", err)
	}
	t0 = wallclock.Now()
	if err := rc.drive(offPIR1, false); err != nil {
		return err
	}
	if err := rc.expect(controller.InputPresence, "", controller.LevelInactive, t0); err != nil {
		return err
	}
	return rc.quiet()
}

// errSlowStimulus marks a check whose stimulus was not delivered fast
// enough to prove anything (the VM's CPU was starved); it is retried.
var errSlowStimulus = errors.New("stimulus too slow")

// maxAttempts bounds the retries of a check whose stimulus was too slow.
const maxAttempts = 4

// retrySlow runs check; when it fails only because its stimulus was too
// slow, it drives every input inactive, waits until the readings go quiet
// (long enough for a flapping line to recover), and tries again.
func (rc *roomCheck) retrySlow(check func() error) func() error {
	return func() error {
		var err error
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			if err = check(); !errors.Is(err, errSlowStimulus) {
				return err
			}
			fmt.Printf("vmtest: attempt %d: %v; retrying\n", attempt, err)
			for _, l := range inputLines {
				if derr := rc.drive(l.off, false); derr != nil {
					return derr
				}
			}
			for {
				r, ok := rc.next(flapWindow + quietFor)
				if !ok {
					break
				}
				if r.Level != controller.LevelInactive && r.Detail != device.DetailFlapping {
					return fmt.Errorf("while recovering from a slow stimulus: got %s with every input inactive", describe(r))
				}
			}
		}
		return fmt.Errorf("%d attempts: %w", maxAttempts, err)
	}
}

// burst writes line off's pull alternately, ending at its active level if
// active, and returns when it started. A burst that took half the debounce
// or more returns errSlowStimulus.
func (rc *roomCheck) burst(off int, active bool, writes int) (time.Time, error) {
	t0 := wallclock.Now()
	level := active
	if writes%2 == 0 {
		level = !active
	}
	for i := 0; i < writes; i++ {
		if err := rc.drive(off, level); err != nil {
			return t0, err
		}
		level = !level
	}
	if d := wallclock.Since(t0); d >= debounce/2 {
		return t0, fmt.Errorf("burst of %d writes on %s took %s, not well inside the debounce %s: %w",
			writes, lineNames[off], d, debounce, errSlowStimulus)
	}
	return t0, nil
}

// bounce: a burst ending at the other level is delivered once, at that level.
func (rc *roomCheck) bounce() error {
	for _, active := range []bool{true, false} {
		t0, err := rc.burst(offDoor, active, 7)
		if err != nil {
			return err
		}
		level := controller.LevelInactive
		if active {
			level = controller.LevelActive
		}
		if err := rc.expect(controller.InputDoor, "", level, t0); err != nil {
			return fmt.Errorf("after a 7-write burst: %w", err)
		}
		if err := rc.quiet(); err != nil {
			return fmt.Errorf("after a 7-write burst: %w", err)
		}
	}
	return nil
}

// glitch: a burst that ends where it started produces no reading.
func (rc *roomCheck) glitch() error {
	if _, err := rc.burst(offDoor, false, 6); err != nil {
		return err
	}
	if err := rc.quiet(); err != nil {
		return fmt.Errorf("after a 6-write glitch ending closed: %w", err)
	}
	return nil
}

// flap: more than flapMax changes within flapWindow make STAFF unknown
// ("flapping"); once quiet for a whole window it reports its level again.
//
// The changes come in bursts of flapBurst with a pause between: the kernel
// queues at most 16 edge events per requested line (periph leaves
// event_buffer_size at its default) and drops the oldest beyond that, so one
// instantaneous burst counts as at most 16 changes. Bursts go on until a
// reading arrives.
func (rc *roomCheck) flap() error {
	const (
		flapBurst = 10 // even: each burst ends released
		flapPause = 10 * time.Millisecond
	)
	t0 := wallclock.Now()
	changes := 0
	var r device.Reading
	for got := false; !got; {
		if wallclock.Since(t0) >= flapWindow/2 {
			return fmt.Errorf("%d changes in %s without a reading, not well inside the flap window %s: %w",
				changes, wallclock.Since(t0).Round(time.Millisecond), flapWindow, errSlowStimulus)
		}
		if _, err := rc.burst(offStaff, false, flapBurst); err != nil {
			return err
		}
		changes += flapBurst
		r, got = rc.next(flapPause)
	}
	if r.Input != controller.InputStaff || r.Level != controller.LevelUnknown || r.Detail != device.DetailFlapping {
		return fmt.Errorf("got %s %s (%q) after %d changes, want staff unknown (%q)",
			r.Input, r.Input.Describe(r.Level), r.Detail, changes, device.DetailFlapping)
	}
	if changes <= flapMax {
		return fmt.Errorf("staff flapping after only %d changes, limit %d", changes, flapMax)
	}
	last := wallclock.Now()
	r, ok := rc.next(flapWindow + expectWithin)
	if !ok {
		return fmt.Errorf("staff still unknown %s after the last burst", wallclock.Since(last).Round(time.Millisecond))
	}
	if r.Input != controller.InputStaff || r.Level != controller.LevelInactive {
		return fmt.Errorf("got %s %s (%q) after flapping stopped, want staff released", r.Input, r.Input.Describe(r.Level), r.Detail)
	}
	if d := wallclock.Since(last); d < flapWindow-debounce {
		return fmt.Errorf("staff recovered %s after the last burst, before a whole quiet window of %s", d, flapWindow)
	}
	return rc.quiet()
}

// waitValue polls the sim until line off reads want.
func (rc *roomCheck) waitValue(off, want int, within time.Duration) error {
	deadline := wallclock.Now().Add(within)
	for {
		v, err := rc.sim.value(off)
		if err != nil {
			return err
		}
		if v == want {
			return nil
		}
		if wallclock.Now().After(deadline) {
			return fmt.Errorf("line %s reads %d, want %d within %s", lineNames[off], v, want, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitOutputs requires every output line at its electrical level for
// logical level on.
func (rc *roomCheck) waitOutputs(on bool) error {
	for _, o := range outputLines {
		if err := rc.waitValue(o.off, electrical(on, o.activeLow), 500*time.Millisecond); err != nil {
			return fmt.Errorf("%s (active-low %v) logically on=%v: %w", o.out, o.activeLow, on, err)
		}
	}
	return nil
}

// outputs: Set on/off drives each line to its active/inactive level.
func (rc *roomCheck) outputs() error {
	for _, o := range outputLines {
		for _, m := range []controller.Mode{controller.ModeOn, controller.ModeOff} {
			if err := rc.set(o.out, m); err != nil {
				return err
			}
			want := electrical(m == controller.ModeOn, o.activeLow)
			if err := rc.waitValue(o.off, want, 500*time.Millisecond); err != nil {
				return fmt.Errorf("after Set(%s, %s), active-low %v: %w", o.out, m, o.activeLow, err)
			}
		}
	}
	return nil
}

// blink: ModeBlink shows both levels on the line, ModeOff ends at 0.
func (rc *roomCheck) blink() error {
	if err := rc.room.Set(controller.OutputAlarmLight, controller.ModeBlink, 0); err != nil {
		return fmt.Errorf("Set(alarm_light, blink): %w", err)
	}
	seen := map[int]bool{}
	deadline := wallclock.Now().Add(3 * time.Second)
	for len(seen) < 2 && wallclock.Now().Before(deadline) {
		v, err := rc.sim.value(offLight)
		if err != nil {
			return err
		}
		seen[v] = true
		time.Sleep(2 * time.Millisecond)
	}
	if len(seen) < 2 {
		return fmt.Errorf("LIGHT only ever read %v in 3s of blinking", seen)
	}
	if err := rc.room.Set(controller.OutputAlarmLight, controller.ModeOff, 0); err != nil {
		return fmt.Errorf("Set(alarm_light, off): %w", err)
	}
	return rc.waitValue(offLight, 0, 500*time.Millisecond)
}

// expectVerdict requires the next reading to be a verdict on the sounder.
func (rc *roomCheck) expectVerdict(follows bool, within time.Duration) (device.Reading, error) {
	r, ok := rc.next(within)
	if !ok {
		return r, fmt.Errorf("no verdict on the sounder within %s, want follows=%v", within, follows)
	}
	if r.Output != controller.OutputAlarmSounder || r.Follows != follows {
		return r, fmt.Errorf("got %s, want the sounder read back follows=%v", describe(r), follows)
	}
	return r, nil
}

// relay drives the sounder and moves FB after it, as a relay's contact does.
func (rc *roomCheck) relay(on bool) error {
	m := controller.ModeOff
	if on {
		m = controller.ModeOn
	}
	return rc.set(controller.OutputAlarmSounder, m)
}

// feedbackFollows: the sounder switched on and off with FB following sends
// no verdict (the first one, at the start, said it follows).
func (rc *roomCheck) feedbackFollows() error {
	for _, on := range []bool{true, false, true, false} {
		if err := rc.relay(on); err != nil {
			return err
		}
		if err := rc.quiet(); err != nil {
			return fmt.Errorf("sounder on=%v with FB following: %w", on, err)
		}
	}
	return nil
}

// feedbackStuck: the sounder turned off while FB stays high (a welded
// contact) is found within the grace; FB following again clears it after
// a whole recovery time.
func (rc *roomCheck) feedbackStuck() error {
	if err := rc.relay(true); err != nil {
		return err
	}
	if err := rc.quiet(); err != nil {
		return err
	}
	t0 := wallclock.Now()
	if err := rc.room.Set(controller.OutputAlarmSounder, controller.ModeOff, 0); err != nil {
		return fmt.Errorf("Set(alarm_sounder, off): %w", err)
	}
	r, err := rc.expectVerdict(false, expectWithin)
	if err != nil {
		return err
	}
	if r.At.Sub(t0) < feedbackGrace {
		return fmt.Errorf("stuck contact reported %s after the change, before the grace %s", r.At.Sub(t0), feedbackGrace)
	}
	if !strings.Contains(r.Detail, "read back on while driven off") {
		return fmt.Errorf("stuck contact detail %q", r.Detail)
	}
	if err := rc.quiet(); err != nil {
		return fmt.Errorf("still stuck: told once: %w", err)
	}
	freed := wallclock.Now()
	if err := rc.sim.pull(offFeedback, false); err != nil {
		return err
	}
	if _, err := rc.expectVerdict(true, device.FeedbackRecovery+expectWithin); err != nil {
		return err
	}
	if d := wallclock.Since(freed); d < device.FeedbackRecovery-quietFor {
		return fmt.Errorf("sounder counted as working %s after FB followed, before the recovery time %s", d, device.FeedbackRecovery)
	}
	return rc.quiet()
}

// safe: Safe turns every output off while the lines are still held.
func (rc *roomCheck) safe() error {
	for _, o := range outputLines {
		if err := rc.set(o.out, controller.ModeOn); err != nil {
			return err
		}
	}
	if err := rc.waitOutputs(true); err != nil {
		return err
	}
	if err := rc.room.Safe(); err != nil {
		return fmt.Errorf("Safe: %w", err)
	}
	if err := rc.sim.pull(offFeedback, false); err != nil { // the sounder relay drops
		return err
	}
	if err := rc.waitOutputs(false); err != nil {
		return err
	}
	return rc.quiet()
}

// set drives output o to steady mode m; for the supervised sounder, FB
// follows as the relay's contact would.
func (rc *roomCheck) set(o controller.Output, m controller.Mode) error {
	if err := rc.room.Set(o, m, 0); err != nil {
		return fmt.Errorf("Set(%s, %s): %w", o, m, err)
	}
	if o == controller.OutputAlarmSounder {
		return rc.sim.pull(offFeedback, m == controller.ModeOn)
	}
	return nil
}
