package link

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// The privacy rule: during a visit no message carries presence and no
// message is caused by a presence change. Two visits that differ only in
// when presence changes during the visit must publish identical bytes.

type driver interface {
	event(ev controller.Event)
	command(at time.Time, requestID, payload string)
}

// presenceScript gives presence changes during the visit, by minute.
type presenceScript map[int]controller.Level

var (
	scriptA = presenceScript{2: controller.LevelActive, 10: controller.LevelInactive, 20: controller.LevelActive, 41: controller.LevelInactive, 44: controller.LevelActive, 68: controller.LevelInactive}
	scriptB = presenceScript{5: controller.LevelActive, 6: controller.LevelInactive, 7: controller.LevelActive, 30: controller.LevelUnknown, 33: controller.LevelActive, 50: controller.LevelInactive, 51: controller.LevelActive, 69: controller.LevelInactive}
)

func privacyPolicy() controller.Policy {
	p := testPolicy()
	p.EndOnVacancy = false
	return p
}

// runVisit drives one visit: the same door, panic, commands and ticks at the
// same instants; only presence during the visit follows script.
// expires is the commands' expires_at, the same in both runs so that the
// commands a test compares are the same bytes.
func runVisit(d driver, script presenceScript, expires string) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	in := func(min int, i controller.Input, l controller.Level) {
		d.event(controller.InputChanged{At: at(min), Input: i, Level: l})
	}
	for _, i := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic, controller.InputStaff} {
		in(0, i, controller.LevelInactive)
	}
	d.command(at(1), "start", `{"request_id":"start","action":"start_visit","expires_at":"`+expires+`","visit_id":"v-42","duration":"1h"}`)
	for min := 1; min <= 75; min++ {
		if l, ok := script[min]; ok {
			in(min, controller.InputPresence, l)
		}
		switch min {
		case 3:
			in(min, controller.InputDoor, controller.LevelActive)
		case 4:
			in(min, controller.InputDoor, controller.LevelInactive)
		case 25:
			in(min, controller.InputPanic, controller.LevelActive)
		case 26:
			in(min, controller.InputPanic, controller.LevelInactive)
			d.command(at(min), "ack-panic", `{"request_id":"ack-panic","action":"ack_alert","expires_at":"`+expires+`","alert_id":"panic-1"}`)
		case 46:
			d.command(at(min), "ext", `{"request_id":"ext","action":"extend_visit","expires_at":"`+expires+`","add":"5m"}`)
		case 70:
			d.command(at(min), "end", `{"request_id":"end","action":"end_visit","expires_at":"`+expires+`"}`)
		}
		d.event(controller.Tick{At: at(min).Add(30 * time.Second)})
	}
	d.command(at(76), "state", `{"request_id":"state","action":"get_state"}`)
}

// pureDriver renders every message the daemon would publish, in order.
type pureDriver struct {
	t    testing.TB
	ctrl *controller.Controller
	out  []string
}

func (p *pureDriver) apply(rd controller.Ready) {
	for _, r := range rd.Records {
		p.out = append(p.out, "events "+string(contract.EncodeRecord("room-a", 1, r)))
		if r.Type.IsAlert() {
			p.out = append(p.out, "alerts "+string(contract.EncodeRecord("room-a", 1, r)))
		}
	}
	if rd.StateChanged {
		p.out = append(p.out, "state "+string(contract.EncodeState("room-a", 1, p.ctrl.State())))
	}
	for _, r := range rd.Replies {
		p.out = append(p.out, "reply "+string(contract.EncodeReply("room-a", 1, r.Operator, r, p.ctrl.State())))
	}
}

func (p *pureDriver) event(ev controller.Event) { p.apply(p.ctrl.Step(ev)) }

func (p *pureDriver) command(at time.Time, _, payload string) {
	cmd, cerr := contract.DecodeCommand([]byte(payload), 0, wallclock.Now())
	require.Nil(p.t, cerr)
	cmd.At = at
	p.apply(p.ctrl.Step(cmd.Command))
}

func TestPrivacyEncodedStreamsIdentical(t *testing.T) {
	expires := exp()
	run := func(script presenceScript) []string {
		ctrl, acts, err := controller.New(privacyPolicy(), t0)
		require.NoError(t, err)
		d := &pureDriver{t: t, ctrl: ctrl}
		d.apply(acts)
		runVisit(d, script, expires)
		return d.out
	}
	a, b := run(scriptA), run(scriptB)
	require.Greater(t, len(a), 20)
	assert.Equal(t, a, b, "presence during the visit changed what was published")
	// The stream did contain a visit, alerts and presence outside the visit.
	joined := fmt.Sprint(a)
	for _, want := range []string{`"type":"visit_started"`, `"type":"visit_extended"`, `"kind":"time_up"`, `"kind":"panic"`, `"presence":"absent"`, `"type":"visit_ended"`} {
		assert.Contains(t, joined, want)
	}
}

// roomDriver drives a room over a real broker.
type roomDriver struct {
	r   *room
	obs *observer
}

func (d roomDriver) event(ev controller.Event) {
	d.r.do(func() {
		switch e := ev.(type) {
		case controller.InputChanged:
			d.r.setNow(e.At)
		case controller.Tick:
			d.r.setNow(e.At)
		}
		d.r.apply(d.r.ctrl.Step(ev))
	})
}

func (d roomDriver) command(at time.Time, requestID, payload string) {
	d.r.do(func() { d.r.setNow(at) })
	d.obs.command("room-a", payload, requestID)
}

func TestPrivacyPublishedStreamsIdentical(t *testing.T) {
	expires := exp()
	run := func(script presenceScript) map[string][]string {
		url := mqtttest.Embedded(t)
		obs := observe(t, url, observerOpts{})
		p := privacyPolicy()
		r := startRoom(t, roomOpts{url: url, policy: &p})
		runVisit(roomDriver{r: r, obs: obs}, script, expires)
		last := r.lastSeq()
		r.flush()
		out := map[string][]string{}
		for {
			m := obs.next("events", nil)
			out["events"] = append(out["events"], m.Payload)
			if strictEvent(t, m.Payload).Seq == last {
				break
			}
		}
		st := obs.next("state", func(m obsMsg) bool { return stateOf(t, m.Payload).Seq == last })
		out["state(final)"] = []string{st.Payload}
		r.stop(true)
		obs.next("availability", func(m obsMsg) bool { return m.Payload == contract.Offline })
		for _, suffix := range []string{"events", "alerts", "reply", "cmd", "availability"} {
			for _, m := range obs.drain(suffix) { // nothing is published twice without a reconnect
				out[suffix] = append(out[suffix], m.Payload)
			}
		}
		// Each run's journal has its own random epoch: compare without it.
		ep := r.j.Epoch().String()
		for k, v := range out {
			for i := range v {
				v[i] = strings.ReplaceAll(v[i], ep, "EPOCH")
			}
			out[k] = v
		}
		// The retained state is latest-wins, so intermediate states may be
		// coalesced; the states that did arrive carry no presence in a visit.
		for _, m := range obs.drain("state") {
			s := stateOf(t, m.Payload)
			if s.Visit != nil {
				assert.Empty(t, s.Presence)
			}
		}
		return out
	}
	a, b := run(scriptA), run(scriptB)
	require.NotEmpty(t, a["events"])
	require.NotEmpty(t, a["alerts"])
	assert.Equal(t, a, b, "presence during the visit changed what was published")
}
