package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// Timer suite settings: short visits with warnings 2 s and 1 s before the end.
const (
	timerVisit = 3 * time.Second
)

// timerSamples collects lateness figures from concurrent rooms.
type timerSamples struct {
	mu                 sync.Mutex
	warnArrive, warnAt []time.Duration
	upArrive, upAt     []time.Duration
	bare               []time.Duration
	floor              []time.Duration
}

func (s *timerSamples) add(dst *[]time.Duration, d time.Duration) {
	s.mu.Lock()
	*dst = append(*dst, d)
	s.mu.Unlock()
}

// runTimer measures how late visit_warning and time_up are against their
// deadlines, over many short visits in a few rooms at once: arrival at the
// guard minus the deadline on the wall clock, and the record's own at minus
// the deadline. The deadline is the visit's ends_at (from visit_started)
// minus the warning offset. The floor is a bare Go timer set for the same
// instants in the same process.
func runTimer(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	rc := e.roomConfig(filepath.Join(e.dir, "timer"))
	rc.Policy.Warnings = []time.Duration{2 * time.Second, time.Second}
	res.Params = map[string]string{"visits": fmt.Sprint(e.cfg.Visits), "rooms": fmt.Sprint(e.cfg.TimerRooms),
		"visit": timerVisit.String(), "warnings": "2s,1s before the end"}
	var s timerSamples
	per := (e.cfg.Visits + e.cfg.TimerRooms - 1) / e.cfg.TimerRooms
	errs := make(chan error, e.cfg.TimerRooms)
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(uint64(e.cfg.Seed), 2))
	left := e.cfg.Visits
	for i := range e.cfg.TimerRooms {
		n := min(per, left)
		left -= n
		if n == 0 {
			break
		}
		offset := time.Duration(rng.Int64N(int64(time.Second)))
		id := e.roomID("tmr", i+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- timerRoom(ctx, e, id, rc, n, offset, &s)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
	}
	fs := summarize(s.floor)
	bare := summarize(s.bare)
	target := func(r *Row) {
		r.Target = "p99 < 10 ms late, never early"
		r.Met = boolp(r.Sample.P99 < 10 && r.Sample.Min >= 0)
	}
	target(res.row("visit_warning: record at - deadline", summarize(s.warnAt), &bare))
	target(res.row("visit_warning: arrival at guard - deadline", summarize(s.warnArrive), &bare))
	target(res.row("time_up: record at - deadline", summarize(s.upAt), &bare))
	target(res.row("time_up: arrival at guard (alerts) - deadline", summarize(s.upArrive), &bare))
	res.row("floor: bare Go timer for the same deadlines", bare, nil)
	res.row("floor: bare paho publish -> bare subscriber", fs, nil)
	res.note("the floor column of the timer rows is the bare Go timer; the MQTT floor (last row) is what the arrival rows add on top")
	res.note("deadlines come from ends_at on the wire (millisecond precision, truncated), so lateness can read up to 1 ms high and record-at lateness is in whole milliseconds")
	res.note("visits of %s with warnings 2 s and 1 s before the end are bench settings; real policies use minutes, and the timer path is the same", timerVisit)
	return res
}

// timerRoom runs n visits one after the other in one room.
func timerRoom(ctx context.Context, e *env, id string, rc roomConfig, n int, offset time.Duration, s *timerSamples) error {
	r, in, err := e.startWaiting(ctx, id, rc, 256)
	if err != nil {
		return err
	}
	defer func() { _ = r.Stop() }()
	con, err := e.console(id)
	if err != nil {
		return err
	}
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return ctx.Err()
	}
	for v := range n {
		if err := con.send(controller.Command{Action: controller.ActionStartVisit, VisitID: fmt.Sprintf("v%d", v+1), Duration: timerVisit}); err != nil {
			return err
		}
		started, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isEvent(m, "visit_started") })
		if err != nil {
			return fmt.Errorf("room %s visit %d: visit_started: %w", id, v+1, err)
		}
		ends := started.Event.EndsAt.Time
		deadlines := map[int]time.Time{1: ends.Add(-2 * time.Second), 2: ends.Add(-time.Second), 0: ends}
		for _, d := range deadlines {
			time.AfterFunc(wallclock.Until(d), func() { s.add(&s.bare, wallclock.Since(d)) })
		}
		seen := 0
		for seen < 3 {
			m, err := waitRecord(ctx, in, recordTimeout, func(m received) bool {
				return isEvent(m, "visit_warning") || isAlert(m, "alert_raised", "time_up")
			})
			if err != nil {
				return fmt.Errorf("room %s visit %d: warnings and time_up: %w", id, v+1, err)
			}
			if m.Event.Type == "visit_warning" {
				d, ok := deadlines[m.Event.Warning]
				if !ok {
					return fmt.Errorf("room %s visit %d: unexpected warning %d", id, v+1, m.Event.Warning)
				}
				s.add(&s.warnArrive, m.Arrived.Sub(d))
				s.add(&s.warnAt, m.Event.At.Time.Sub(d))
			} else {
				s.add(&s.upArrive, m.Arrived.Sub(ends))
				s.add(&s.upAt, m.Event.At.Time.Sub(ends))
			}
			seen++
		}
		if err := con.send(controller.Command{Action: controller.ActionEndVisit}); err != nil {
			return err
		}
		if _, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isEvent(m, "visit_ended") }); err != nil {
			return fmt.Errorf("room %s visit %d: visit_ended: %w", id, v+1, err)
		}
		d, err := e.prober.floorSample(e.guard, recordTimeout)
		if err != nil {
			return err
		}
		s.add(&s.floor, d)
	}
	return nil
}
