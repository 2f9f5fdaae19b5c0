package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// fleetCollector gathers alert latencies while a step's window is open.
type fleetCollector struct {
	mu        sync.Mutex
	measuring bool
	lat       []time.Duration
	failures  atomic.Int64 // cycles whose records did not arrive in time
}

func (c *fleetCollector) add(d time.Duration) {
	c.mu.Lock()
	if c.measuring {
		c.lat = append(c.lat, d)
	}
	c.mu.Unlock()
}

func (c *fleetCollector) open() {
	c.mu.Lock()
	c.measuring, c.lat = true, nil
	c.mu.Unlock()
}

func (c *fleetCollector) close() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.measuring = false
	return c.lat
}

// runFleet runs N rooms in this one process, each with its own controller
// loop, simulated backend, journal and MQTT client, against one
// broker. Every room runs a visit and presses its panic button once per
// --fleet-period (at a random phase), then releases it and has it
// acknowledged by the console, which clears the alert. N steps through
// --rooms; rooms are added, never restarted, between steps. Each step
// measures alert_raised latency from the press to the guard for
// --fleet-window, with floor probes every 100 ms. Stepping stops after the
// first step whose p99 misses --fleet-p99 or loses a record.
func runFleet(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	dir := e.cfg.FleetDir
	if dir == "" {
		dir = os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			dir = "/dev/shm"
		}
	}
	root, err := os.MkdirTemp(dir, "roombench-fleet-")
	if err != nil {
		res.Error = fmt.Sprintf("create fleet dir: %v", err)
		return res
	}
	defer func() { _ = os.RemoveAll(root) }()
	res.Params = map[string]string{"rooms": fmt.Sprint(e.cfg.Rooms), "window": e.cfg.FleetWindow.String(),
		"period": e.cfg.FleetPeriod.String(), "state_dirs": dir, "open_files_limit": fmt.Sprint(fileLimit())}
	rc := e.roomConfig(root)

	var col fleetCollector
	stop := make(chan struct{})
	var cycles sync.WaitGroup
	var rooms []*room
	var roomsMu sync.Mutex
	defer func() {
		close(stop)
		cycles.Wait()
		var wg sync.WaitGroup
		for _, r := range rooms {
			wg.Add(1)
			go func() { defer wg.Done(); _ = r.Stop() }()
		}
		wg.Wait()
	}()
	rng := rand.New(rand.NewPCG(uint64(e.cfg.Seed), 4))
	best := 0
	for _, n := range e.cfg.Rooms {
		if ctx.Err() != nil {
			break
		}
		e.logf("fleet: starting rooms %d..%d", len(rooms)+1, n)
		begin := wallclock.Now()
		sem := make(chan struct{}, 32)
		var wg sync.WaitGroup
		var errMu sync.Mutex
		var startErr error
		fail := func(err error) {
			errMu.Lock()
			if startErr == nil {
				startErr = err
			}
			errMu.Unlock()
		}
		for i := len(rooms); i < n; i++ {
			id := e.roomID("fl", i+1)
			phase := time.Duration(rng.Int64N(int64(e.cfg.FleetPeriod)))
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, in, err := e.startWaiting(ctx, id, rc, 64)
				if err != nil {
					fail(err)
					return
				}
				roomsMu.Lock()
				rooms = append(rooms, r)
				roomsMu.Unlock()
				con, err := e.console(id)
				if err != nil {
					fail(err)
					return
				}
				if err := con.send(controller.Command{Action: controller.ActionStartVisit, VisitID: "v1", Duration: time.Hour}); err != nil {
					fail(err)
					return
				}
				if _, err := waitRecord(ctx, in, 30*time.Second, func(m received) bool { return isEvent(m, "visit_started") }); err != nil {
					fail(fmt.Errorf("room %s: visit_started: %w", id, err))
					return
				}
				cycles.Add(1)
				go func() {
					defer cycles.Done()
					fleetCycles(ctx, r, in, con, e.cfg.FleetPeriod, phase, stop, &col)
				}()
			}()
		}
		wg.Wait()
		if startErr != nil {
			res.Error = fmt.Sprintf("%d rooms: %v", n, startErr)
			return res
		}
		e.logf("fleet: %d rooms up in %s; warming up", n, wallclock.Since(begin).Round(time.Millisecond))
		if !sleepCtx(ctx, e.cfg.FleetPeriod) {
			break
		}
		failedBefore := col.failures.Load()
		selfA, _ := readProc(os.Getpid())
		var mqA procSample
		if e.mosq != nil {
			mqA, _ = readProc(e.mosq.Pid())
		}
		col.open()
		floor := floorProbes(ctx, e, e.cfg.FleetWindow, 100*time.Millisecond)
		lat := col.close()
		selfB, _ := readProc(os.Getpid())
		failed := col.failures.Load() - failedBefore
		s := summarize(lat)
		row := res.row(fmt.Sprintf("%d rooms: press -> alert_raised on alerts", n), s, &floor)
		row.Target = fmt.Sprintf("p99 < %s, none late > %s", e.cfg.FleetP99, recordTimeout)
		ok := s.N > 0 && s.P99 < ms(e.cfg.FleetP99) && failed == 0
		row.Met = boolp(ok)
		load := fmt.Sprintf("alerts %.0f/s; roombench CPU %.0f%% of a core", float64(s.N)/e.cfg.FleetWindow.Seconds(), cpuShare(selfA, selfB))
		if e.mosq != nil {
			mqB, _ := readProc(e.mosq.Pid())
			load += fmt.Sprintf(", mosquitto %.0f%% (RSS %.0f MiB)", cpuShare(mqA, mqB), float64(mqB.RSSKiB)/1024)
		}
		load += fmt.Sprintf("; RSS %.0f MiB, %d goroutines, %d threads, %d fds; %d records late or lost",
			float64(selfB.RSSKiB)/1024, runtime.NumGoroutine(), selfB.Threads, selfB.FDs, failed)
		res.check(fmt.Sprintf("%d rooms", n), load, "", nil)
		e.logf("fleet: %d rooms: p50 %.1f p99 %.1f ms, floor p99 %.1f ms; %s", n, s.P50, s.P99, floor.P99, load)
		if failed > 0 {
			res.problem("%d rooms: %d press cycles had a record late by more than %s or lost", n, failed, recordTimeout)
		}
		if !ok {
			break
		}
		best = n
	}
	res.check("most rooms with alert p99 under target", fmt.Sprint(best), ">= 1000", boolp(best >= 1000))
	res.note("every room is a full roomd (room.Open: controller loop, sim backend, journal, publisher, own paho client) in one process on the same %d cores as the broker and the guard; separate Pis would not share the CPU", runtime.NumCPU())
	res.note("journals under %s; every step is still synced (one sync per append)", dir)
	return res
}

// fleetCycles presses the panic button of r once per period until stop.
func fleetCycles(ctx context.Context, r *room, in <-chan received, con *console, period, phase time.Duration, stop <-chan struct{}, col *fleetCollector) {
	periodically(ctx, phase, period, stop, func() {
		start := wallclock.Now()
		if err := r.Sim.SetInput(controller.InputPanic, controller.LevelActive); err != nil {
			col.failures.Add(1)
			return
		}
		m, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isAlert(m, "alert_raised", "panic") })
		if err != nil {
			col.failures.Add(1)
			_ = r.Sim.SetInput(controller.InputPanic, controller.LevelInactive)
			return
		}
		col.add(m.Arrived.Sub(start))
		_ = r.Sim.SetInput(controller.InputPanic, controller.LevelInactive)
		if err := con.send(controller.Command{Action: controller.ActionAckAlert, AlertID: m.Event.Alert.ID}); err != nil {
			col.failures.Add(1)
			return
		}
		if _, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isAlert(m, "alert_cleared", "panic") }); err != nil {
			col.failures.Add(1)
		}
	})
}

// periodically calls f after phase and then once per period, until stop
// or the end of ctx. A call that overruns its period delays the next ones
// rather than bursting to catch up.
func periodically(ctx context.Context, phase, period time.Duration, stop <-chan struct{}, f func()) {
	next := wallclock.Now().Add(phase)
	for {
		select {
		case <-time.After(wallclock.Until(next)):
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
		next = next.Add(period)
		f()
		if wallclock.Until(next) < 0 {
			next = wallclock.Now() // overloaded: do not burst to catch up
		}
	}
}

// floorProbes sends floor probes every interval for d and summarizes them.
func floorProbes(ctx context.Context, e *env, d, every time.Duration) Summary {
	var out []time.Duration
	end := wallclock.Now().Add(d)
	for wallclock.Now().Before(end) && ctx.Err() == nil {
		if v, err := e.prober.floorSample(e.guard, recordTimeout); err == nil {
			out = append(out, v)
		}
		sleepCtx(ctx, every)
	}
	return summarize(out)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
