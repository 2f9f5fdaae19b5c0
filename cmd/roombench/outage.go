package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/wallclock"
)

// runOutage kills the broker (SIGKILL) while rooms in a visit raise alerts:
// each presses its panic button and throws and releases its bolt every
// 500 ms (lock_engaged, door_locked raised, lock_released, door_locked
// cleared) for the whole outage. Then the broker is started again on the
// same port and persistence directory. It reports the time from the
// restart to the last alert raised during the outage arriving at the guard,
// and checks that nothing was lost: every room's events seqs arrive without
// a gap up to a final visit_extended sent after the restart, and every alert
// record among them arrives on the alerts topic too.
func runOutage(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	res.Params = map[string]string{"rooms": fmt.Sprint(e.cfg.OutageRooms), "outage": e.cfg.Outage.String(),
		"max_reconnect_interval": link.DefaultMaxReconnectInterval.String() + " (link default, as roomd run)"}
	if e.mosq == nil {
		res.Error = "the outage suite kills the broker: run it without --broker"
		return res
	}
	rc := e.roomConfig(filepath.Join(e.dir, "outage"))
	rc.Policy.LockGrace = 0
	type roomIn struct {
		r   *room
		in  <-chan received
		con *console
	}
	rooms := make([]roomIn, e.cfg.OutageRooms)
	var wg sync.WaitGroup
	errs := make(chan error, len(rooms))
	for i := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := e.roomID("out", i+1)
			r, in, err := e.startWaiting(ctx, id, rc, 1024)
			if err != nil {
				errs <- err
				return
			}
			con, err := e.console(id)
			if err == nil {
				_, err = con.request(ctx, in, controller.Command{Action: controller.ActionStartVisit, VisitID: "v1", Duration: time.Hour},
					30*time.Second, func(m received) bool { return isEvent(m, "visit_started") })
			}
			rooms[i] = roomIn{r: r, in: in, con: con}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, ri := range rooms {
			if ri.r != nil {
				_ = ri.r.Stop()
			}
		}
	}()
	for err := range errs {
		if err != nil {
			res.Error = err.Error()
			return res
		}
	}

	e.logf("outage: %d rooms in a visit; killing the broker for %s", len(rooms), e.cfg.Outage)
	e.mosq.Kill()
	killed := wallclock.Now()
	stop := make(chan struct{})
	var toggles sync.WaitGroup
	for _, ri := range rooms {
		toggles.Add(1)
		go func() {
			defer toggles.Done()
			_ = ri.r.Sim.SetInput(controller.InputPanic, controller.LevelActive)
			level := controller.LevelActive
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				_ = ri.r.Sim.SetInput(controller.InputLock, level)
				level = 3 - level // active <-> inactive
				select {
				case <-t.C:
				case <-stop:
					_ = ri.r.Sim.SetInput(controller.InputLock, controller.LevelInactive)
					return
				}
			}
		}()
	}
	sleepCtx(ctx, e.cfg.Outage)
	close(stop)
	toggles.Wait()
	// Let the last bolt release settle (debounce) before the broker returns.
	sleepCtx(ctx, 200*time.Millisecond)
	queued := 0
	for _, ri := range rooms {
		queued += ri.r.Queued()
	}
	if err := e.mosq.Restart(); err != nil {
		res.Error = err.Error()
		return res
	}
	restarted := wallclock.Now()
	e.logf("outage: broker back after %s with %d journal entries waiting", restarted.Sub(killed).Round(time.Millisecond), queued)

	// Mark the end of each room's records with a visit_extended.
	var final sync.Map
	errs = make(chan error, len(rooms))
	for _, ri := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := ri.con.request(ctx, ri.in, controller.Command{Action: controller.ActionExtendVisit, Duration: time.Minute},
				2*time.Minute, func(m received) bool { return isEvent(m, "visit_extended") })
			if err != nil {
				errs <- fmt.Errorf("room %s: visit_extended after the restart: %w", ri.r.ID, err)
				return
			}
			final.Store(ri.r.ID, m.Event.Seq)
			errs <- nil
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			res.problem("%v", err)
		}
	}
	// The alerts copy of a record follows its events copy; give the last
	// ones a moment.
	sleepCtx(ctx, time.Second)

	var lastAlert time.Time
	var raisedInOutage, records, dups int
	var fromRestart []time.Duration
	for _, ri := range rooms {
		v, ok := final.Load(ri.r.ID)
		if !ok {
			continue
		}
		last := v.(uint64)
		seen := e.guard.snapshot(ri.r.ID)
		dups += seen.duplicates
		var missing, missingAlerts []uint64
		for seq := uint64(1); seq <= last; seq++ {
			typ, ok := seen.events[seq]
			if !ok {
				missing = append(missing, seq)
				continue
			}
			records++
			if strings.HasPrefix(typ, "alert_") {
				if _, ok := seen.alerts[seq]; !ok {
					missingAlerts = append(missingAlerts, seq)
				}
			}
		}
		if len(missing) > 0 {
			res.problem("room %s: events seqs %v never arrived (last seq %d)", ri.r.ID, missing, last)
		}
		if len(missingAlerts) > 0 {
			res.problem("room %s: alert records %v never arrived on the alerts topic", ri.r.ID, missingAlerts)
		}
		for _, a := range seen.alerts {
			if a.Event.Type == "alert_raised" && a.Event.At.After(killed) && a.Event.At.Before(restarted) {
				raisedInOutage++
				fromRestart = append(fromRestart, a.Arrived.Sub(restarted))
				if a.Arrived.After(lastAlert) {
					lastAlert = a.Arrived
				}
			}
		}
	}
	fs := summarize(fromRestart)
	res.row("restart -> arrival of each alert raised during the outage", fs, nil)
	res.check("broker down (SIGKILL to restart accepting)", restarted.Sub(killed).Round(time.Millisecond).String(), "", nil)
	res.check("journal entries waiting at restart", fmt.Sprint(queued), "", nil)
	res.check("alerts raised during the outage", fmt.Sprint(raisedInOutage), "", nil)
	if !lastAlert.IsZero() {
		res.check("restart -> last queued alert delivered", lastAlert.Sub(restarted).Round(time.Millisecond).String(), "", nil)
	}
	res.check("records checked (events seqs 1..final, alerts copies)", fmt.Sprint(records), "", nil)
	res.check("records lost", fmt.Sprint(len(res.Problems)), "0", boolp(len(res.Problems) == 0))
	res.check("duplicates (at-least-once redelivery)", fmt.Sprint(dups), "", nil)
	if raisedInOutage == 0 {
		res.problem("no alert raised during the outage arrived")
	}
	if e.cfg.SaveEvery > 0 {
		res.note("with periodic saves the restarted broker has lost the sessions and subscriptions made since its last save: a command published before a room resubscribes is dropped, and the console sends it again (same request_id); roomd's own records are published again from its journal")
	}
	res.note("rooms reconnect with a backoff of 1 s doubling, capped by the link's default of %s (as roomd run), so the restart-to-delivery time depends on when each room next tries", link.DefaultMaxReconnectInterval)
	return res
}
