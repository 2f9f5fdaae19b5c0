package room_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/wallclock"
)

// FuzzAcceptedConfigPublishesAPanicWithinASecond: whatever durations a
// config holds, either the config is refused, naming a field that is outside
// its limit, or a room run on it journals (and so publishes) a panic press
// within one second, during a visit with its timers running, and its loop
// does not spin meanwhile.
func FuzzAcceptedConfigPublishesAPanicWithinASecond(f *testing.F) {
	ms := int64(time.Millisecond)
	f.Add(int64(time.Minute), int64(2*time.Minute), int64(5*time.Minute), int64(10*time.Minute), int64(10*time.Second), int64(0), 20*ms, int64(5*time.Second), int64(10*time.Second), int64(time.Second), int64(30*time.Second))
	f.Add(int64(1), int64(1), int64(1), int64(1), int64(0), int64(0), int64(0), int64(1), int64(1), int64(1), int64(1)) // the spinning config
	f.Add(int64(time.Second), int64(time.Second), int64(time.Second), int64(time.Second), int64(0), int64(time.Minute), 500*ms, 100*ms, int64(time.Second), 100*ms, int64(time.Second))
	f.Add(int64(time.Hour), int64(24*time.Hour), int64(24*time.Hour), int64(24*time.Hour), int64(time.Hour), int64(24*time.Hour), 501*ms, int64(time.Minute), int64(time.Hour), int64(10*time.Second), int64(time.Hour))
	f.Fuzz(func(t *testing.T, repeat, escalate, reannounce, vacate, lockGrace, welfare, debounce, reread, flapWindow, blink, heartbeat int64) {
		d := func(n int64) string { return time.Duration(n).String() }
		yaml := fmt.Sprintf(`room: room-f
state_dir: %s
policy: {preset: italy, repeat_every: %s, escalate_after: %s, reannounce_after: %s, vacate_timeout: %s, lock_grace: %s, welfare_check_every: %s}
device:
  backend: sim
  reread_every: %s
  flap: {max_changes: 20, window: %s}
  blink_period: %s
  feedback_grace: 10ms
  inputs:
    door: {pin: GPIO17}
    lock: {pin: GPIO27}
    presence: [{pin: GPIO22}]
    panic: [{name: bed, pin: GPIO23, debounce: %s}]
mqtt: {broker: "tcp://127.0.0.1:1", heartbeat: %s}
`, t.TempDir(), d(repeat), d(escalate), d(reannounce), d(vacate), d(lockGrace), d(welfare), d(reread), d(flapWindow), d(blink), d(debounce), d(heartbeat))
		cfg, err := configs.Parse([]byte(yaml), "fuzz.yaml")
		if err != nil {
			// Refused: the message names a field of the config.
			require.Regexp(t, `fuzz\.yaml:\d+: (policy|device|mqtt)\.[a-z_.\[\]0-9]+: `, err.Error())
			for _, l := range configs.DurationLimits {
				if strings.Contains(err.Error(), l.Key+": must be between") {
					return
				}
			}
			return // refused for another rule (welfare longer than the visit, ...)
		}
		synctest.Test(t, func(t *testing.T) {
			r, err := room.Open(room.Options{Config: cfg, NoBroker: true,
				MinPlausible: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).Add(wallclock.Shift())})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			synctest.Wait()
			s := r.Sim()
			require.NoError(t, s.SetInput(controller.InputPresence, controller.LevelActive))
			require.NoError(t, r.Send(ctx, controller.Command{RequestID: "v", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour}, "guard-1"))
			<-time.After(3 * time.Second) // timers of the visit run
			synctest.Wait()
			before := r.Journal().Last()
			require.NoError(t, s.SetInput(controller.InputPanic, controller.LevelActive))
			<-time.After(time.Second)
			synctest.Wait()
			j := r.Journal()
			raised := false
			for lsn := before + 1; lsn <= j.Last(); lsn++ {
				e, err := j.Get(lsn)
				require.NoError(t, err)
				for _, rec := range e.Records {
					if rec.Type == controller.EventAlertRaised && rec.Alert.Kind == controller.AlertPanic {
						raised = true
					}
				}
			}
			require.True(t, raised, "the panic is journaled (and published) within 1 s")
			t.Logf("accepted: panic journaled; %d entries in the second", j.Last()-before)
			require.Less(t, j.Last()-before, uint64(200), "the loop does not spin")
			cancel()
			require.NoError(t, <-done)
		})
	})
}
