package link

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// TestBrokerThatStopsAcknowledging: the broker (behind a proxy that drops
// every PUBACK) takes and forwards the room's messages but never
// acknowledges them. More records are pending than the window holds; then
// the panic is pressed. It reaches a subscriber within StallAfter and a
// little (it never waits for the dead-broker timeout); the link fault is
// raised after FaultAfter without an acknowledgement, the connection is made
// again after PublishTimeout, and once PUBACKs come back everything is
// delivered and the fault clears.
func TestBrokerThatStopsAcknowledging(t *testing.T) {
	testtier.Slow(t, "a broker that stops acknowledging, for seconds")
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/+"})
	px := mqtttest.StartMQTTProxy(t, url)
	var mu sync.Mutex
	var faults []controller.Fault
	const publishTimeout, faultAfter = 3 * time.Second, 2 * time.Second
	r := startRoom(t, roomOpts{url: px.URL(), pub: func(o *PublisherOptions) {
		o.PublishTimeout, o.FaultAfter = publishTimeout, faultAfter
		o.Faults = func(f controller.Fault) { mu.Lock(); faults = append(faults, f); mu.Unlock() }
	}})
	r.flush()
	accepted := px.Accepted()

	px.DropPubacks(true)
	for i := range 20 { // more records than the window (16) holds
		lvl := controller.LevelActive
		if i%2 == 1 {
			lvl = controller.LevelInactive
		}
		r.input(controller.InputDoor, lvl)
	}
	start := wallclock.Now()
	r.input(controller.InputPanic, controller.LevelActive)
	obs.await("alerts", func(m obsMsg) bool {
		e := strictEvent(t, m.Payload)
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Kind == "panic"
	})
	took := wallclock.Since(start)
	assert.Less(t, took, StallAfter+time.Second, "the panic is not held behind the unacknowledged window")
	t.Logf("panic at the subscriber %s after the press, PUBACKs dropped", took)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range faults {
			if f.Source == contract.SourceLink && f.Active {
				return true
			}
		}
		return false
	}, faultAfter+publishTimeout+2*time.Second, 20*time.Millisecond, "no acknowledgement for FaultAfter: the link fault (critical, the local alarm)")
	require.Eventually(t, func() bool { return px.Accepted() > accepted }, publishTimeout+3*time.Second, 20*time.Millisecond,
		"no PUBACK for PublishTimeout: the broker is declared dead and the connection made again")
	assert.Positive(t, px.DroppedPubacks())

	px.DropPubacks(false)
	r.flush()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		last := faults[len(faults)-1]
		return last.Source == contract.SourceLink && !last.Active
	}, 10*time.Second, 20*time.Millisecond, "the fault clears once the broker acknowledges again")
}
