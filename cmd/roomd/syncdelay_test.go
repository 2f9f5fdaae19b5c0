package main

import (
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// TestProcessAlertsDoNotWaitForASlowCard runs the real roomd process on a
// card whose every sync takes 1.2 s (a build with -tags syncdelay,
// ROOMD_SYNC_DELAY): a panic reaches the guard long before one sync could
// have finished, and the room says the card stalled, naming it.
func TestProcessAlertsDoNotWaitForASlowCard(t *testing.T) {
	const stall = 1200 * time.Millisecond
	bin := buildRoomd(t, "-tags", "syncdelay")
	url := mqtttest.Embedded(t)
	const base, room = "visitrooms", "room-s"
	obs := observe(t, url, base, room)
	cfg := writeSimConfig(t, url, room, t.TempDir())

	p, logs := startProcess(t, bin, cfg, "ROOMD_SYNC_DELAY="+stall.String())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("roomd's log:\n%s", logs.String())
		}
	})
	obs.next("events", isEvent("controller_started"))
	assert.Contains(t, logs.String(), "SYNC LATENCY INJECTED")
	rep := obs.command(base, room, contract.CommandMessage{RequestID: "s-1", Action: "start_visit", VisitID: "v-s", Duration: "1h"})
	require.True(t, rep.OK, "%+v", rep.Error)

	press := wallclock.Now()
	obs.publish(base+"/"+room+"/sim/set", []byte(`{"panic":true}`))
	e := event(t, obs.next("alerts", alertRaised("panic")))
	took := wallclock.Since(press)
	t.Logf("the panic reached the guard %s after the press", took)
	assert.Less(t, took, stall, "the panic reached the guard %s after the press: it waited for a sync", took)
	assert.Equal(t, "panic", e.Alert.Kind)

	f := event(t, obs.next("alerts", func(m paho.Message) bool {
		e := event(t, m)
		return e.Type == "alert_raised" && e.Alert != nil && e.Alert.Source == contract.SourceJournalSync
	}))
	assert.Equal(t, "warning", f.Alert.Severity)
	assert.Contains(t, f.Alert.Detail, "stalled")
	assert.Contains(t, f.Alert.Detail, "replace it")

	require.NoError(t, p.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.Wait(), "a clean stop, its last sync included")
}
