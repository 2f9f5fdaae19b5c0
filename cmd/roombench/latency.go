package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// commandLife is the expires_at of the commands the suites send.
const commandLife = 10 * time.Minute

// recordTimeout bounds the wait for any one record at the guard.
const recordTimeout = 10 * time.Second

// console sends commands to a room through the prober, as a booking system
// or guard console would.
type console struct {
	p      *prober
	room   string
	topics contract.Topics
}

// requestIDs numbers commands: a room answers a request_id it has seen
// from its reply cache, so ids never repeat within a run.
var requestIDs atomic.Uint64

func nextRequestID() string { return fmt.Sprintf("rb-%d", requestIDs.Add(1)) }

func (e *env) console(roomID string) (*console, error) {
	t, err := contract.NewTopics(contract.DefaultBase, roomID)
	if err != nil {
		return nil, err
	}
	return &console{p: e.prober, room: roomID, topics: t}, nil
}

func (c *console) send(cmd controller.Command) error {
	_, err := c.sendID(cmd)
	return err
}

func (c *console) sendID(cmd controller.Command) (string, error) {
	id := nextRequestID()
	return id, c.p.post(c.room, commandOf(cmd).WithRequestID(id))
}

// commandOf is the roomclient command of a controller command.
func commandOf(c controller.Command) roomclient.Command {
	var out roomclient.Command
	switch c.Action {
	case controller.ActionStartVisit:
		out = roomclient.StartVisit(c.VisitID, c.Duration)
	case controller.ActionExtendVisit:
		out = roomclient.ExtendVisit(c.Duration)
	case controller.ActionEndVisit:
		out = roomclient.EndVisit()
	case controller.ActionAckAlert:
		out = roomclient.AckAlert(c.AlertID)
	case controller.ActionSetService:
		out = roomclient.SetService(c.InService, c.Reason)
	case controller.ActionSetReady:
		out = roomclient.SetReady()
	default:
		out = roomclient.GetState()
	}
	return out.WithRequestID(c.RequestID)
}

// ping sends get_state until its reply arrives: a room's first
// subscription may not be in place yet when its first records arrive.
func (c *console) ping(ctx context.Context, in <-chan received, timeout time.Duration) error {
	_, err := c.request(ctx, in, controller.Command{Action: controller.ActionGetState}, timeout, nil)
	return err
}

// request sends cmd and waits until a record matching want arrives (or,
// with want nil, the command's reply). While neither the reply nor the
// record has come it sends the command again every 2 s with the same
// request_id and expiry, as a console retries: a command published before
// the room (re)subscribed is dropped by the broker, and a repeat is answered
// from the room's reply cache instead of being applied twice.
func (c *console) request(ctx context.Context, in <-chan received, cmd controller.Command, timeout time.Duration, want func(received) bool) (received, error) {
	cmd.RequestID = nextRequestID()
	prepared, _, err := c.p.cli.Prepare(commandOf(cmd))
	if err != nil {
		return received{}, err
	}
	end := wallclock.Now().Add(timeout)
	replied := false
	for wallclock.Now().Before(end) {
		if !replied {
			if err := c.p.post(c.room, prepared); err != nil {
				return received{}, err
			}
		}
		var got received
		_, err := waitRecord(ctx, in, 2*time.Second, func(m received) bool {
			if m.Reply != nil && m.Reply.RequestID == cmd.RequestID {
				replied = true
				if want == nil {
					got = m
					return true
				}
				return false
			}
			if want != nil && want(m) {
				got = m
				return true
			}
			return false
		})
		if err == nil {
			return got, nil
		}
		if ctx.Err() != nil {
			return received{}, ctx.Err()
		}
	}
	return received{}, fmt.Errorf("%s (request %s): nothing within %s", cmd.Action, cmd.RequestID, timeout)
}

func (c *console) simSet(payload string) error {
	return c.p.publish(c.topics.SimSet(), []byte(payload))
}

// startWaiting starts a room with an inbox and waits for its
// controller_started record, which says the room is up and connected.
func (e *env) startWaiting(ctx context.Context, id string, rc roomConfig, depth int) (*room, <-chan received, error) {
	in := e.guard.inbox(id, depth)
	r, err := startRoom(id, rc)
	if err != nil {
		return nil, nil, err
	}
	if _, err := waitRecord(ctx, in, 30*time.Second, func(m received) bool { return isEvent(m, "controller_started") }); err != nil {
		_ = r.Stop()
		return nil, nil, fmt.Errorf("room %s did not come up: %w", id, err)
	}
	con, err := e.console(id)
	if err == nil {
		err = con.ping(ctx, in, 30*time.Second)
	}
	if err != nil {
		_ = r.Stop()
		return nil, nil, fmt.Errorf("room %s does not answer commands: %w", id, err)
	}
	return r, in, nil
}

// runLatency measures input edge to guard: a panic press until the
// alert_raised record arrives at the guard console, (a) pressed through the
// sim control surface over MQTT, (b) pressed through the in-process sim API.
// Each sample is followed by release and ack_alert, which clears the panic
// so the next press raises a new one. Floor probes are interleaved one for
// one with the samples. With --sync-delay, one room per injected sync
// latency runs in turn, each beside its own floor.
func runLatency(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	base := e.roomConfig(filepath.Join(e.dir, "latency"))
	debounce := base.Spec.Inputs[controller.InputPanic][0].Debounce
	res.Params = map[string]string{"samples": fmt.Sprint(e.cfg.Samples), "debounce": debounce.String(), "qos": "1",
		"sync_delay": strings.Join(e.cfg.SyncDelays, ",")}
	for n, delay := range e.cfg.SyncDelays {
		if err := latencyAt(ctx, e, res, base, debounce, delay, n+1); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	res.note("the panic input's debounce (%s) is part of every sample: a press is reported only once it held that long", debounce)
	res.note("path: debounce, loop step, journal append (one write into the page cache; the sync follows behind), publisher, paho publish QoS 1, broker, guard; the alerts copy follows the events copy of the same record in the same publish window")
	res.note("sync: the injected latency of every fdatasync of the room's journal (journal.DelayFS); \"sdcard\" draws p50 %s, p99 %s, one in %d stalling %s", journal.SDCardP50, journal.SDCardP99, journal.SDCardStallEvery, journal.SDCardStall)
	return res
}

func latencyAt(ctx context.Context, e *env, res *SuiteResult, rc roomConfig, debounce time.Duration, delay string, n int) error {
	sd, err := journal.ParseSyncDelay(delay, uint64(e.cfg.Seed))
	if err != nil {
		return err
	}
	rc.JournalFS = journal.DelayFS{FS: journal.OS{}, Delay: sd.Next}
	id := e.roomID("lat", n)
	r, in, err := e.startWaiting(ctx, id, rc, 256)
	if err != nil {
		return err
	}
	defer func() { _ = r.Stop() }()
	con, err := e.console(id)
	if err != nil {
		return err
	}

	press := map[string]func() error{
		"mqtt": func() error { return con.simSet(`{"panic":true}`) },
		"api":  func() error { return r.Sim.SetInput(controller.InputPanic, controller.LevelActive) },
	}
	var floor, timerLate []time.Duration
	lat := map[string][]time.Duration{}
	events := map[string][]time.Duration{}
	cycle := func(path string) error {
		start := wallclock.Now()
		if err := press[path](); err != nil {
			return err
		}
		var evAt time.Time
		m, err := waitRecord(ctx, in, recordTimeout, func(m received) bool {
			// The panic's own copy: a fault raised meanwhile (a slow
			// card's sync warning) is an alert_raised too.
			if isEvent(m, "alert_raised") && m.Event.Alert != nil && m.Event.Alert.Kind == "panic" && evAt.IsZero() {
				evAt = m.Arrived
			}
			return isAlert(m, "alert_raised", "panic")
		})
		if err != nil {
			return fmt.Errorf("%s press: alert_raised panic: %w", path, err)
		}
		lat[path] = append(lat[path], m.Arrived.Sub(start))
		if !evAt.IsZero() {
			events[path] = append(events[path], evAt.Sub(start))
		}
		if err := r.Sim.SetInput(controller.InputPanic, controller.LevelInactive); err != nil {
			return err
		}
		if err := con.send(controller.Command{Action: controller.ActionAckAlert, AlertID: m.Event.Alert.ID}); err != nil {
			return err
		}
		if _, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isAlert(m, "alert_cleared", "panic") }); err != nil {
			return fmt.Errorf("%s: panic not cleared after release and ack: %w", path, err)
		}
		return nil
	}
	for i := range e.cfg.Samples {
		for _, path := range []string{"mqtt", "api"} {
			d, err := e.prober.floorSample(e.guard, recordTimeout)
			if err != nil {
				return err
			}
			floor = append(floor, d)
			timerLate = append(timerLate, timerLateness(debounce))
			if err := cycle(path); err != nil {
				return fmt.Errorf("sync %s, sample %d: %v", delay, i+1, err)
			}
		}
	}
	fs := summarize(floor)
	target := func(row *Row) {
		lim := 1.5*fs.P99 + ms(debounce)
		row.Target = fmt.Sprintf("p99 <= 1.5x floor p99 + debounce = %.1f ms", lim)
		row.Met = boolp(row.Sample.P99 <= lim)
	}
	tag := "sync " + sd.Name
	target(res.row("["+tag+"] (a) sim/set over MQTT -> alert_raised on alerts", summarize(lat["mqtt"]), &fs))
	res.row("["+tag+"] (a) same, alert_raised on events", summarize(events["mqtt"]), &fs)
	target(res.row("["+tag+"] (b) in-process sim.SetInput -> alert_raised on alerts", summarize(lat["api"]), &fs))
	res.row("["+tag+"] (b) same, alert_raised on events", summarize(events["api"]), &fs)
	res.row("["+tag+"] floor: bare paho publish -> bare subscriber", fs, nil)
	res.row("["+tag+"] floor: a bare runtime timer of the debounce, fired late by", summarize(timerLate), nil)
	st := r.r.Journal().SyncStats().Summary()
	res.note("[%s] the journal's syncs: %d, p50 %s, p99 %s, longest %s", tag, st.Count,
		st.P50.Round(10*time.Microsecond), st.P99.Round(10*time.Microsecond), st.Max.Round(10*time.Microsecond))
	return nil
}

// timerLateness waits d on a runtime timer, as the debounce does, and
// returns how late it fired: what any Go program on this machine adds to a
// debounced press before doing anything with it (the runtime's netpoller
// sleeps in whole milliseconds).
func timerLateness(d time.Duration) time.Duration {
	start := wallclock.Now()
	t := time.NewTimer(d)
	<-t.C
	return wallclock.Since(start) - d
}
