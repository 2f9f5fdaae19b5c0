package room_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/wallclock"
)

// metricsRoom is a room without a broker in a synctest bubble (fake time:
// two runs see the same instants), with its metrics.
type metricsRoom struct {
	*room.Room
	t        *testing.T
	gather   func() string
	presence atomic.Int64 // presence changes so far: the adversarial memory source
	cancel   context.CancelFunc
	done     chan error
}

func startMetricsRoom(t *testing.T) *metricsRoom {
	t.Helper()
	cfg, err := configs.Parse(fmt.Appendf(nil, "room: room-1\nstate_dir: %s\npolicy: {preset: italy}\ndevice: {backend: sim}\nmqtt: {broker: \"tcp://127.0.0.1:1\"}\n",
		t.TempDir()), "metrics config")
	require.NoError(t, err)
	cfg.Policy.EndOnVacancy = false // as link's privacy tests: the visit ends by command
	m := &metricsRoom{t: t, done: make(chan error, 1)}
	m.Room, err = room.Open(room.Options{Config: cfg, NoBroker: true,
		// A year before synctest's bubbles start (2000-01-01 UTC).
		MinPlausible: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).Add(wallclock.Shift())})
	require.NoError(t, err)
	// Memory that moves with every presence change: what the process's
	// memory could do, made certain, so that a metric not held during the
	// visit would show it.
	reg := m.Metrics(room.MetricsOptions{Memory: func() (uint64, error) { return 1<<20 + uint64(m.presence.Load())*4096, nil }})
	m.gather = func() string {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var b bytes.Buffer
		for _, mf := range mfs {
			_, err := expfmt.MetricFamilyToText(&b, mf)
			require.NoError(t, err)
		}
		return b.String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- m.Run(ctx) }()
	synctest.Wait()
	return m
}

func (m *metricsRoom) stop() {
	m.cancel()
	require.NoError(m.t, <-m.done)
}

func (m *metricsRoom) advance(d time.Duration) {
	<-time.After(d)
	synctest.Wait()
}

func (m *metricsRoom) input(in controller.Input, l controller.Level) {
	require.NoError(m.t, m.Sim().SetInput(in, l))
	if in == controller.InputPresence {
		m.presence.Add(1)
	}
	m.advance(time.Second) // debounce
}

func (m *metricsRoom) command(c controller.Command) {
	require.NoError(m.t, m.Send(context.Background(), c, "guard-1"))
	synctest.Wait()
}

// privacyScript gives presence changes during the visit, by minute.
type privacyScript map[int]controller.Level

var (
	metricsScriptA = privacyScript{2: controller.LevelActive, 10: controller.LevelInactive, 20: controller.LevelActive, 27: controller.LevelInactive, 33: controller.LevelActive, 38: controller.LevelInactive}
	metricsScriptB = privacyScript{5: controller.LevelActive, 6: controller.LevelInactive, 7: controller.LevelActive, 30: controller.LevelInactive}
)

// metricsVisit runs one visit and returns every exported series, as text,
// at every minute of it: the same door, panic, acknowledgement and commands
// at the same instants in every run; only presence follows script.
func metricsVisit(t *testing.T, script privacyScript) (during []string, after string) {
	var out []string
	synctest.Test(t, func(t *testing.T) {
		m := startMetricsRoom(t)
		defer m.stop()
		for _, in := range []controller.Input{controller.InputDoor, controller.InputLock, controller.InputPresence, controller.InputPanic, controller.InputStaff} {
			m.input(in, controller.LevelInactive)
		}
		m.command(controller.Command{RequestID: "start", Action: controller.ActionStartVisit, VisitID: "v-42", Duration: time.Hour})
		for min := 1; min <= 40; min++ {
			if l, ok := script[min]; ok {
				m.input(controller.InputPresence, l)
			}
			switch min {
			case 3:
				m.input(controller.InputDoor, controller.LevelActive)
			case 4:
				m.input(controller.InputDoor, controller.LevelInactive)
			case 25:
				m.input(controller.InputPanic, controller.LevelActive)
			case 26:
				m.input(controller.InputPanic, controller.LevelInactive)
				m.command(controller.Command{RequestID: "ack", Action: controller.ActionAckAlert, AlertID: "panic-1"})
			}
			// Every minute on the minute, as the file would be written.
			m.advance(time.Minute - time.Duration(wallclock.Now().UnixNano())%time.Minute)
			out = append(out, m.gather())
		}
		m.command(controller.Command{RequestID: "end", Action: controller.ActionEndVisit})
		m.command(controller.Command{RequestID: "ready", Action: controller.ActionSetReady}) // the inspection done
		m.advance(time.Minute)
		after = m.gather()
	})
	return out, after
}

// TestMetricsDoNotMoveWithPresence: two visits that differ only in when
// presence changes during the visit export the same series with the same
// values at every minute, although the memory the metrics read moves with
// every presence change.
func TestMetricsDoNotMoveWithPresence(t *testing.T) {
	a, afterA := metricsVisit(t, metricsScriptA)
	b, afterB := metricsVisit(t, metricsScriptB)
	require.Len(t, a, 40)
	require.Len(t, b, 40)
	for i := range a {
		assert.Equal(t, a[i], b[i], "minute %d of the visit: the metrics moved with presence", i+1)
	}
	// The comparison covered every metric, the visit's alert among them,
	// and the held ones said so.
	for _, name := range room.MetricNames {
		assert.Regexp(t, "(?m)^"+name+"(_bucket|_count)?{", a[len(a)-1], "metric %s not exported", name)
	}
	assert.Contains(t, a[len(a)-1], `roomd_alerts_total{event="raised",kind="panic",room="room-1"} 1`)
	assert.Contains(t, a[len(a)-1], `roomd_alerts_total{event="acknowledged",kind="panic",room="room-1"} 1`)
	assert.Contains(t, a[len(a)-1], `roomd_metrics_held_for_privacy{room="room-1"} 1`)
	// Once the visit is over the memory source shows again, and it did move:
	// had it not been held, the minutes above would differ.
	assert.Contains(t, afterA, `roomd_metrics_held_for_privacy{room="room-1"} 0`)
	assert.NotEqual(t, metricLine(afterA, "roomd_process_resident_memory_bytes"), metricLine(afterB, "roomd_process_resident_memory_bytes"))
}

func metricLine(text, name string) string {
	for _, ln := range strings.Split(text, "\n") {
		if strings.HasPrefix(ln, name+"{") {
			return ln
		}
	}
	return ""
}
