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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/internal/siteworld/worldtest"
	"github.com/roomd/roomd/link/mqtttest"
)

// patience bounds a wait that only a failing test reaches.
const patience = worldtest.Patience

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

// bridgeRestart is the bridges' restart_timeout in the tests.
const bridgeRestart = worldtest.BridgeRestart

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
	*worldtest.World
	t      *testing.T
	centre *siteworld.CentralMosquitto

	// centreKilled: the centre was killed (SIGKILL) with messages it had
	// acknowledged but not yet saved; see siteworld's Verify.
	centreKilled bool
}

// newWorld starts the shipped central mosquitto and the world of
// worldtest.Start around it: the sites with the rooms named, the guards and
// the booking system, every bridge up and every room started.
func newWorld(t *testing.T, sites map[string][]string) *world {
	t.Helper()
	siteworld.Need(t)
	centre := mosquittoCentre(t)
	return &world{World: worldtest.Start(t, centre, sites), t: t, centre: centre}
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
	w.Await(what, func() (ok bool) { rep, ok = w.Booking.Reply(id); return ok })
	return rep
}

// verify waits until the centre holds every record and the sites' retained
// topics, and checks that no command acted after its expires_at.
func (w *world) verify() { w.VerifyAll(w.centreKilled) }

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

var (
	summary   = worldtest.Summary
	waitUntil = worldtest.WaitUntil
)
