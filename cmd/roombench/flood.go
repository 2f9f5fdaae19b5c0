package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/wallclock"
)

// runFlood measures what a command flood from one identity does to the
// alerts and to the other identities: panic edge -> guard without a flood,
// then the same during a flood of --flood-rate commands/s on
// cmd/flooder, while another identity (cmd/guard-2) asks get_state once a
// second. Goals: the panic's p99 within 1.5x its p99 without the flood;
// every get_state of the other identity answered within 1 s.
func runFlood(ctx context.Context, e *env) *SuiteResult {
	res := &SuiteResult{}
	rc := e.roomConfig(filepath.Join(e.dir, "flood"))
	res.Params = map[string]string{"samples": fmt.Sprint(e.cfg.Samples), "flood_rate": fmt.Sprint(e.cfg.FloodRate),
		"flood_for": e.cfg.FloodFor.String(), "rate_limit": fmt.Sprintf("%d/s, burst %d, cap %d/s", link.DefaultRateLimit.PerSecond,
			link.DefaultRateLimit.Burst, link.DefaultRateLimit.CapPerSecond)}
	id := e.roomID("flood", 1)
	r, in, err := e.startWaiting(ctx, id, rc, 1<<16)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer func() { _ = r.Stop() }()
	con, err := e.console(id)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	press := func() (time.Duration, error) {
		start := wallclock.Now()
		if err := r.Sim.SetInput(controller.InputPanic, controller.LevelActive); err != nil {
			return 0, err
		}
		m, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isAlert(m, "alert_raised", "panic") })
		if err != nil {
			return 0, fmt.Errorf("alert_raised panic: %w", err)
		}
		d := m.Arrived.Sub(start)
		if err := r.Sim.SetInput(controller.InputPanic, controller.LevelInactive); err != nil {
			return 0, err
		}
		if err := con.send(controller.Command{Action: controller.ActionAckAlert, AlertID: m.Event.Alert.ID}); err != nil {
			return 0, err
		}
		if _, err := waitRecord(ctx, in, recordTimeout, func(m received) bool { return isAlert(m, "alert_cleared", "panic") }); err != nil {
			return 0, fmt.Errorf("panic not cleared: %w", err)
		}
		return d, nil
	}
	samples := max(e.cfg.Samples/4, 5)
	var calm []time.Duration
	for i := range samples {
		d, err := press()
		if err != nil {
			res.Error = fmt.Sprintf("calm sample %d: %v", i+1, err)
			return res
		}
		calm = append(calm, d)
	}

	// The flood: its own connection, QoS 1, never waiting for a PUBACK.
	fl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(e.broker).SetClientID("roombench-flooder-" + e.tag).SetCleanSession(true))
	if tok := fl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		res.Error = fmt.Sprintf("flooder: connect: %v", tok.Error())
		return res
	}
	defer fl.Disconnect(100)
	topic := con.topics.OperatorCommand("flooder")
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		const tick = 10 * time.Millisecond
		per := max(e.cfg.FloodRate*int(tick)/int(time.Second), 1)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for range per {
				n := sent.Add(1)
				fl.Publish(topic, 1, false, fmt.Sprintf(`{"request_id":"fl-%d","action":"ack_alert","alert_id":"panic-0","expires_at":%q}`,
					n, wallclock.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)))
			}
		}
	}()
	// The other identity's get_state, once a second; its replies are
	// picked out of the reply stream by request_id.
	var gsMu sync.Mutex
	gsSent := map[string]time.Time{}
	var gsLat []time.Duration
	gsStop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-gsStop:
				return
			case <-t.C:
			}
			rid := fmt.Sprintf("gs-%s-%d", e.tag, i)
			gsMu.Lock()
			gsSent[rid] = wallclock.Now()
			gsMu.Unlock()
			_ = e.prober.publish(con.topics.OperatorCommand("guard-2"), fmt.Appendf(nil, `{"request_id":%q,"action":"get_state"}`, rid))
		}
	}()
	// The guard's inbox carries the room's replies too: a reader keeps
	// what the samples need and times the other identity's answers.
	samplesIn := make(chan received, 1<<12)
	var busy, ok, other atomic.Int64
	readerDone := make(chan struct{})
	guardIn := in
	go func() {
		defer close(readerDone)
		for m := range guardIn {
			if m.Reply != nil {
				rid := m.Reply.RequestID
				switch {
				case strings.HasPrefix(rid, "gs-"):
					gsMu.Lock()
					if at, ok := gsSent[rid]; ok {
						gsLat = append(gsLat, m.Arrived.Sub(at))
						delete(gsSent, rid)
					}
					gsMu.Unlock()
				case strings.HasPrefix(rid, "fl-"):
					if m.Reply.Error != nil && m.Reply.Error.Code == "busy" {
						busy.Add(1)
					} else {
						ok.Add(1)
					}
				default:
					other.Add(1)
				}
				continue
			}
			select {
			case samplesIn <- m:
			default:
			}
		}
	}()
	in = samplesIn
	floodStart := wallclock.Now()
	var flooded []time.Duration
	for i := 0; wallclock.Since(floodStart) < e.cfg.FloodFor || i < samples; i++ {
		d, err := press()
		if err != nil {
			res.Error = fmt.Sprintf("flood sample %d: %v", i+1, err)
			close(stop)
			close(gsStop)
			wg.Wait()
			return res
		}
		flooded = append(flooded, d)
	}
	took := wallclock.Since(floodStart)
	close(stop)
	close(gsStop)
	wg.Wait()
	// Late answers to the other identity still count, up to the bound.
	deadline := wallclock.Now().Add(2 * time.Second)
	for wallclock.Now().Before(deadline) {
		gsMu.Lock()
		n := len(gsSent)
		gsMu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	gsMu.Lock()
	unanswered := len(gsSent)
	gs := summarize(gsLat)
	gsMu.Unlock()

	cs, fs := summarize(calm), summarize(flooded)
	res.row("panic edge -> guard (alerts), no flood", cs, nil)
	row := res.row(fmt.Sprintf("panic edge -> guard (alerts), flood of %d/s from one identity", e.cfg.FloodRate), fs, &cs)
	lim := 1.5 * cs.P99
	row.Target = fmt.Sprintf("p99 <= 1.5x its p99 without the flood = %.1f ms", lim)
	row.Met = boolp(fs.P99 <= lim)
	grow := res.row("get_state of another identity, sent -> reply at the guard", gs, nil)
	grow.Target = "max <= 1000 ms, none unanswered"
	grow.Met = boolp(gs.Max <= 1000 && unanswered == 0)
	res.check("flood commands sent", fmt.Sprintf("%d in %s (%.0f/s)", sent.Load(), took.Round(time.Millisecond), float64(sent.Load())/took.Seconds()), "", nil)
	res.check("flooder's replies", fmt.Sprintf("%d handled, %d busy, the rest dropped at the cap", ok.Load(), busy.Load()), "", nil)
	res.check("other identity's get_state unanswered", fmt.Sprint(unanswered), "0", boolp(unanswered == 0))
	res.note("the flooder sends ack_alert for an unknown alert on cmd/flooder; the room's edge allows %d/s (burst %d) and answers busy up to %d/s, then drops without answer (one system_fault names it)",
		link.DefaultRateLimit.PerSecond, link.DefaultRateLimit.Burst, link.DefaultRateLimit.CapPerSecond)
	return res
}
