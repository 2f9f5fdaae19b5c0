package controller_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/roomd/roomd/controller"
)

// fuzzPolicy is short enough that random sequences reach every rule.
func fuzzPolicy(vacancy bool) controller.Policy {
	return controller.Policy{
		Name: "fuzz", MaxDuration: 2 * time.Hour, Warnings: []time.Duration{10 * time.Minute, 2 * time.Minute},
		EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute, ReannounceAfter: 5 * time.Minute,
		LockGrace: 10 * time.Second, EndOnVacancy: vacancy, VacancyHold: 2 * time.Minute, VacateTimeout: 10 * time.Minute,
		WelfareCheckEvery: 30 * time.Minute,
	}
}

// decodeEvents turns fuzz bytes into a sequence of events, three bytes each:
// a time step, a kind and an argument.
func decodeEvents(data []byte) []controller.Event {
	var evs []controller.Event
	at := t0
	for i := 0; i+2 < len(data); i += 3 {
		step, kind, arg := data[i], data[i+1], data[i+2]
		at = at.Add(time.Duration(step) * 7 * time.Second)
		switch kind % 8 {
		case 0, 1:
			in := controller.Inputs[int(arg)%len(controller.Inputs)]
			evs = append(evs, controller.InputChanged{At: at, Input: in, Level: controller.Level(arg/8) % 3})
		case 2:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionStartVisit,
				VisitID: "v", Duration: time.Duration(arg) * time.Minute})
		case 3:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionExtendVisit,
				Duration: time.Duration(int(arg)-64) * time.Minute})
		case 4:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionEndVisit})
		case 5:
			kindOf := controller.AlertKinds[int(arg)%len(controller.AlertKinds)]
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionAckAlert,
				AlertID: fmt.Sprintf("%s-%d", kindOf, arg%16)})
		case 6:
			evs = append(evs, controller.Command{At: at, RequestID: "f", Action: controller.ActionSetService, InService: arg%2 == 0, Reason: "r"})
		case 7:
			evs = append(evs, controller.Tick{At: at.Add(time.Duration(arg) * time.Minute)})
			at = at.Add(time.Duration(arg) * time.Minute)
		}
	}
	return evs
}

// drive steps c through evs, ticking at every deadline on the way as a
// driver would, and returns every action.
func drive(t *testing.T, c *controller.Controller, evs []controller.Event, check func(ev controller.Event, acts []controller.Action)) []controller.Action {
	var all []controller.Action
	step := func(ev controller.Event) {
		acts := c.Step(ev)
		if check != nil {
			check(ev, acts)
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
			if !d.After(c.Now()) && ok {
				// A deadline at the current instant must be consumed by the tick.
				acts := c.Step(controller.Tick{At: d})
				all = append(all, acts...)
				if d2, ok2 := c.NextDeadline(); ok2 && !d2.After(d) {
					t.Fatalf("deadline %v did not move after a tick at it", d)
				}
				continue
			}
			step(controller.Tick{At: d})
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
	}
	panic("unknown event")
}

func FuzzController(f *testing.F) {
	f.Add([]byte{0, 2, 60, 10, 0, 1, 200, 7, 200, 3, 0, 9, 1, 5, 0})
	f.Add([]byte{0, 0, 9, 0, 2, 90, 5, 0, 17, 100, 7, 100, 0, 4, 0})
	f.Add([]byte{1, 0, 3, 1, 2, 30, 200, 7, 50, 1, 5, 0, 1, 1, 19})
	f.Fuzz(func(t *testing.T, data []byte) {
		evs := decodeEvents(data)
		p := fuzzPolicy(true)
		c, _, err := controller.New(p, t0)
		if err != nil {
			t.Fatal(err)
		}
		var deadline time.Time
		lockSince := map[bool]time.Time{} // since when the lock reads locked (key true)
		inVisitSince := time.Time{}
		drive(t, c, evs, func(ev controller.Event, acts []controller.Action) {
			st := c.State()
			for _, a := range acts {
				an, ok := a.(controller.Announce)
				if !ok {
					continue
				}
				r := an.Record
				switch r.Type {
				case controller.EventVisitStarted, controller.EventVisitExtended:
					deadline = r.EndsAt
				case controller.EventAlertRaised:
					if r.Alert.Kind == controller.AlertTimeUp && r.At.Before(deadline) {
						t.Fatalf("time_up at %v before the deadline %v", r.At, deadline)
					}
				}
			}
			// Privacy: presence appears in the state only outside visits.
			if st.Phase.InVisit() != (st.Presence == nil) {
				t.Fatalf("presence in state during phase %s: %v", st.Phase, st.Presence)
			}
			if e, ok := ev.(controller.InputChanged); ok {
				switch e.Input {
				case controller.InputPanic:
					if e.Level == controller.LevelActive && !hasAlert(st, controller.AlertPanic) {
						t.Fatalf("panic pressed at %v but no panic alert", e.At)
					}
				case controller.InputPresence:
					// Timers were ticked before the event: a presence change during a visit emits nothing.
					if st.Phase.InVisit() && len(acts) != 0 {
						t.Fatalf("presence change during a visit produced %v", acts)
					}
				case controller.InputLock:
					if e.Level == controller.LevelActive {
						if _, ok := lockSince[true]; !ok {
							lockSince[true] = e.At
						}
					} else {
						delete(lockSince, true)
					}
				}
			}
			if st.Phase.InVisit() {
				if inVisitSince.IsZero() {
					inVisitSince = st.Visit.StartedAt
				}
			} else {
				inVisitSince = time.Time{}
			}
			// A lock engaged during a visit for longer than the grace is door_locked.
			if since, ok := lockSince[true]; ok && st.Phase.InVisit() {
				from := since
				if inVisitSince.After(from) {
					from = inVisitSince
				}
				if st.At.Sub(from) >= p.LockGrace && !hasAlert(st, controller.AlertDoorLocked) {
					t.Fatalf("lock engaged since %v in a visit since %v, at %v no door_locked", since, inVisitSince, st.At)
				}
			}
		})
	})
}

func hasAlert(st controller.State, k controller.AlertKind) bool {
	for _, a := range st.Alerts {
		if a.Kind == k {
			return true
		}
	}
	return false
}

// FuzzPrivacy checks rule 9 as a property: two runs that differ only in
// presence events (vacancy rule off) produce identical action streams.
func FuzzPrivacy(f *testing.F) {
	f.Add([]byte{0, 2, 60, 10, 0, 2, 200, 7, 200, 3, 0, 9, 1, 5, 0}, []byte{3, 10, 0, 200})
	f.Add([]byte{0, 2, 90, 1, 0, 1, 5, 4, 0}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte, presence []byte) {
		evs := decodeEvents(data)
		// Keep presence only outside the noise: the first run has none during
		// visits, the second gets presence changes at the times given.
		var base, noisy []controller.Event
		for _, ev := range evs {
			if e, ok := ev.(controller.InputChanged); ok && e.Input == controller.InputPresence {
				continue
			}
			base = append(base, ev)
		}
		noisy = append(noisy, base...)
		var extra []controller.Event
		for i, b := range presence {
			if i >= len(noisy) {
				break
			}
			at := eventTime(noisy[i]).Add(time.Duration(b%5) * time.Second)
			extra = append(extra, controller.InputChanged{At: at, Input: controller.InputPresence, Level: controller.Level(b % 3)})
		}
		noisy = mergeByTime(noisy, extra)

		// A presence change outside a visit legitimately changes the state;
		// compare the runs only while no presence event falls outside a visit.
		run := func(evs []controller.Event) ([]controller.Action, bool) {
			c, acts, err := controller.New(fuzzPolicy(false), t0)
			if err != nil {
				t.Fatal(err)
			}
			outside := false
			all := append(acts, drive(t, c, evs, func(ev controller.Event, _ []controller.Action) {
				if e, ok := ev.(controller.InputChanged); ok && e.Input == controller.InputPresence && !c.State().Phase.InVisit() {
					outside = true
				}
			})...)
			return all, outside
		}
		a, _ := run(base)
		b, outside := run(noisy)
		if outside {
			return
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("presence during visits changed the actions:\nwithout: %v\nwith:    %v", a, b)
		}
	})
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
