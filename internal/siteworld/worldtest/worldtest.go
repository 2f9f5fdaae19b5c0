// Package worldtest holds a siteworld.World to a test: what fails, fails
// the test. The multi-broker tests of configs/mosquitto (a central
// mosquitto) and configs/nats (the clustered centre) start their worlds
// with it, each with its own centre.
package worldtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/wallclock"
)

// Patience bounds a wait that only a failing test reaches.
const Patience = siteworld.DefaultPatience

// BridgeRestart is the bridges' restart_timeout in the tests: the only
// timing a test cannot wait for, as the shipped backoff (2 s to 30 s) would
// make every scenario wait up to 30 s for a bridge to come back.
const BridgeRestart = "1 1"

// World is a centre, its sites and their rooms, held to the test T.
type World struct {
	*siteworld.World
	T *testing.T
}

// Start starts the sites (each with the rooms named) bridged to centre,
// the guards and the booking system, and returns once every bridge is up
// and every room has announced controller_started at the centre. The rooms
// run the italy preset with the panic alert cleared by acknowledgement
// after release (so that a console can re-arm it) and send their state
// every 500 ms (the retained snapshots read by Verify end at the first live
// message); the consoles keep their sessions, and the booking system
// follows the rooms' states and asks for a replay of every gap once a
// second. The world is closed when the test ends, its logs printed if the
// test failed.
func Start(t *testing.T, centre siteworld.Centre, sites map[string][]string) *World {
	t.Helper()
	siteworld.Need(t)
	italy, err := configs.Preset("italy")
	require.NoError(t, err)
	italy.PanicReset = controller.PanicResetAck
	sw, err := siteworld.Start(siteworld.Options{
		Dir: t.TempDir(), Centre: centre, Sites: sites,
		Site: siteworld.SiteOptions{BridgeRestart: BridgeRestart},
		Rooms: siteworld.RoomOptions{Config: func(c *configs.Config) {
			c.Policy, c.PolicyPreset = italy, "italy"
			c.Device.Flap.MaxChanges = 10000
			c.MQTT.Keepalive = time.Second
			c.MQTT.Heartbeat = 500 * time.Millisecond
		}},
		Consoles: siteworld.Consoles{Persistent: true, States: true, Replies: true, RepairEvery: time.Second},
		Patience: Patience, Logf: t.Logf, Errorf: t.Errorf,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(sw.Logs())
		}
		assert.NoError(t, sw.Close())
	})
	w := &World{World: sw, T: t}
	require.NoError(t, sw.StartRooms(context.Background(), 1, 0))
	for _, s := range sw.Sites() {
		for _, room := range sites[s.ID] {
			w.Await(fmt.Sprintf("%s/%s controller_started", s.ID, room), func() bool {
				return sw.Booking.HasType(s.ID, room, "controller_started")
			})
		}
	}
	return w
}

// MustSite returns the site id, failing the test if there is none.
func (w *World) MustSite(id string) *siteworld.Site {
	s := w.Site(id)
	if s == nil {
		w.T.Fatalf("no site %s", id)
	}
	return s
}

// Await waits until cond is true at the booking system.
func (w *World) Await(what string, cond func() bool) {
	w.T.Helper()
	require.NoError(w.T, w.Booking.Await(what, Patience, cond))
}

// AwaitLink waits until the centre holds the site's bridge as up (or down).
func (w *World) AwaitLink(site string, up bool) {
	w.T.Helper()
	require.NoError(w.T, w.Booking.AwaitLink(site, up, Patience))
}

// RunCycles runs n press cycles in every running room of the given sites
// at once (each room's own one after the other).
func (w *World) RunCycles(n int, phase string, sites ...*siteworld.Site) []siteworld.Sample {
	w.T.Helper()
	out, err := w.Cycles(context.Background(), n, phase, Patience, sites...)
	require.NoError(w.T, err)
	return out
}

// VerifyAll waits until the centre holds every record and the sites'
// retained topics, and checks that no command acted after its expires_at;
// centreKilled as siteworld's Verify.
func (w *World) VerifyAll(centreKilled bool) {
	w.T.Helper()
	require.NoError(w.T, w.Verify(context.Background(), Patience, centreKilled))
}

// Summary is n, min, p50 and max of ds, for a test's log.
func Summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("n=%d min %s p50 %s max %s", len(s), s[0].Round(100*time.Microsecond),
		s[len(s)/2].Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond))
}

// WaitUntil returns once the wall clock has passed at: some scenarios wait
// for an expires_at, which only the wall clock can pass.
func WaitUntil(at time.Time) {
	if d := wallclock.Until(at); d > 0 {
		<-time.After(d)
	}
}
