package mosquitto_test

// The world of the multi-broker tests is internal/siteworld's (shared with
// roombench's sites suite): a central broker and site brokers running the
// shipped files (central.conf and central.acl; mosquitto.conf, acl and
// site-bridge.conf), each site's bridge reaching the centre through
// site-tunnel.conf and a cuttable proxy (its WAN), real rooms on each site,
// a guard console on each site and a booking system at the centre that
// deduplicates records and asks for replays of gaps. Every client speaks
// TLS with its own identity, as in production. This file holds it to the
// test: what fails, fails the test.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

// patience bounds a wait that only a failing test reaches.
const patience = siteworld.DefaultPatience

// Identities and their passwords.
var (
	pwBooking = siteworld.Password(siteworld.BookingUser)
	pwMonitor = siteworld.Password(siteworld.MonitorUser)
	pwGuard   = siteworld.Password(siteworld.GuardUser)
)

const guardID = siteworld.GuardUser

func roomPassword(room string) string { return siteworld.Password(room) }

// mosquittoCentre starts the shipped centre for the test.
func mosquittoCentre(t *testing.T) *siteworld.CentralMosquitto {
	t.Helper()
	o, err := siteworld.CentralOptions(siteworld.Tuning{})
	require.NoError(t, err)
	return &siteworld.CentralMosquitto{Broker: mqtttest.Mosquitto(t, o)}
}

// bridgeRestart is the bridges' restart_timeout in the tests: the only
// timing a test cannot wait for, as the shipped backoff (2 s to 30 s) would
// make every scenario wait up to 30 s for the bridge to come back.
const bridgeRestart = "1 1"

// startSite starts a site bridged to centre, with its broker's identities
// users, for the test.
func startSite(t *testing.T, centre siteworld.Centre, id string, o siteworld.SiteOptions) *siteworld.Site {
	t.Helper()
	mqtttest.NeedMosquitto(t)
	mqtttest.NeedStunnel(t)
	o.BridgeRestart = bridgeRestart
	s, err := siteworld.StartSite(t.TempDir(), centre, id, o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Log())
		}
		assert.NoError(t, s.Close())
	})
	return s
}

// world is one centre, its sites and their rooms, held to the test.
type world struct {
	*siteworld.World
	t      *testing.T
	centre *siteworld.CentralMosquitto

	// centreKilled: the centre was killed (SIGKILL) with messages it had
	// acknowledged but not yet saved; see siteworld's Verify.
	centreKilled bool
}

// newWorld starts the centre, the sites (each with the rooms named), the
// guards and the booking system, and returns once every bridge is up and
// every room has announced controller_started at the centre. The rooms run
// the italy preset with the panic alert cleared by acknowledgement after
// release (so that a console can re-arm it); the consoles keep their
// sessions, and the booking system follows the rooms' states and asks for
// a replay of every gap once a second.
func newWorld(t *testing.T, sites map[string][]string) *world {
	t.Helper()
	siteworld.Need(t)
	italy, err := configs.Preset("italy")
	require.NoError(t, err)
	italy.PanicReset = controller.PanicResetAck
	centre := mosquittoCentre(t)
	sw, err := siteworld.Start(siteworld.Options{
		Dir: t.TempDir(), Centre: centre, Sites: sites,
		Site: siteworld.SiteOptions{BridgeRestart: bridgeRestart},
		Rooms: siteworld.RoomOptions{Config: func(c *configs.Config) {
			c.Policy, c.PolicyPreset = italy, "italy"
			c.Device.Flap.MaxChanges = 10000
			c.MQTT.Keepalive = time.Second
			// Frequent heartbeats: the retained snapshots read by Verify
			// end at the first live message.
			c.MQTT.Heartbeat = 500 * time.Millisecond
		}},
		Consoles: siteworld.Consoles{Persistent: true, States: true, Replies: true, RepairEvery: time.Second},
		Patience: patience, Logf: t.Logf, Errorf: t.Errorf,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(sw.Logs())
		}
		assert.NoError(t, sw.Close())
	})
	w := &world{World: sw, t: t, centre: centre}
	require.NoError(t, sw.StartRooms(context.Background(), 1, 0))
	for _, s := range sw.Sites() {
		for _, room := range sites[s.ID] {
			w.await(fmt.Sprintf("%s/%s controller_started", s.ID, room), func() bool {
				return sw.Booking.HasType(s.ID, room, "controller_started")
			})
		}
	}
	return w
}

func (w *world) site(id string) *siteworld.Site {
	s := w.Site(id)
	if s == nil {
		w.t.Fatalf("no site %s", id)
	}
	return s
}

// await waits until cond is true at the booking system.
func (w *world) await(what string, cond func() bool) {
	w.t.Helper()
	require.NoError(w.t, w.Booking.Await(what, patience, cond))
}

// awaitLink waits until the centre holds the site's bridge as up (or down).
func (w *world) awaitLink(site string, up bool) {
	w.t.Helper()
	require.NoError(w.t, w.Booking.AwaitLink(site, up, patience))
}

// send publishes a command of the booking system to a room of a site.
func (w *world) send(site, room string, cmd controller.Command, expires time.Time) {
	w.t.Helper()
	require.NoError(w.t, w.Booking.Send(site, room, cmd, expires))
}

// reply waits for the reply to request id at the booking system.
func (w *world) reply(what, id string) contract.ReplyMessage {
	w.t.Helper()
	var rep contract.ReplyMessage
	w.await(what, func() (ok bool) { rep, ok = w.Booking.Reply(id); return ok })
	return rep
}

// cycles runs n press cycles in every running room of the given sites at
// once (each room's own one after the other).
func (w *world) cycles(n int, phase string, sites ...*siteworld.Site) []siteworld.Sample {
	w.t.Helper()
	out, err := w.Cycles(context.Background(), n, phase, patience, sites...)
	require.NoError(w.t, err)
	return out
}

// verify waits until the centre holds every record and the sites' retained
// topics, and checks that no command acted after its expires_at.
func (w *world) verify() {
	w.t.Helper()
	require.NoError(w.t, w.Verify(context.Background(), patience, w.centreKilled))
}

// centreRetained reads the centre's retained messages under prefix.
func (w *world) centreRetained(prefix string) map[string]string {
	w.t.Helper()
	got, err := w.CentreRetained(context.Background(), prefix)
	require.NoError(w.t, err)
	return got
}

// siteRetained reads a site broker's retained messages under prefix.
func (w *world) siteRetained(s *siteworld.Site, prefix string) map[string]string {
	w.t.Helper()
	got, err := s.Retained(context.Background(), prefix)
	require.NoError(w.t, err)
	return got
}

// report logs the guard's and the centre's alert latency per phase.
func (w *world) report(samples []siteworld.Sample) {
	phases := map[string][]siteworld.Sample{}
	var order []string
	for _, s := range samples {
		if _, ok := phases[s.Phase]; !ok {
			order = append(order, s.Phase)
		}
		phases[s.Phase] = append(phases[s.Phase], s)
	}
	for _, p := range order {
		guard, centre := siteworld.Latencies(phases[p], w.Booking)
		w.t.Logf("%-28s press -> site guard: %s; press -> centre: %s", p, summary(guard), summary(centre))
	}
}

func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("n=%d min %s p50 %s max %s", len(s), s[0].Round(100*time.Microsecond),
		s[len(s)/2].Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond))
}

// waitUntil returns once the wall clock has passed at: some scenarios wait
// for an expires_at, which only the wall clock can pass.
func waitUntil(at time.Time) {
	if d := wallclock.Until(at); d > 0 {
		<-time.After(d)
	}
}
