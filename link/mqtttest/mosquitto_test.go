package mqtttest_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/mqtttest"
)

func TestEmbeddedRoundTrip(t *testing.T) {
	url := mqtttest.Embedded(t)
	require.True(t, strings.HasPrefix(url, "tcp://127.0.0.1:"), url)
	ch, h := collector()
	sub := connect(t, client{id: "sub", url: url, clean: true})
	subscribe(t, sub, "visitrooms/+/state", h)
	pub := connect(t, client{id: "pub", url: url, clean: true})
	publish(t, pub, "visitrooms/room-a/state", "idle", false)
	require.Equal(t, msg{"visitrooms/room-a/state", "idle"}, receive(t, ch, "state"))
}

func TestMosquittoAnonymousRoundTrip(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	require.True(t, strings.HasPrefix(mq.URL(), "tcp://127.0.0.1:"), mq.URL())
	require.True(t, mq.Running())
	ch, h := collector()
	sub := connect(t, client{id: "sub", url: mq.URL(), clean: true})
	subscribe(t, sub, "visitrooms/#", h)
	pub := connect(t, client{id: "pub", url: mq.URL(), clean: true})
	publish(t, pub, "visitrooms/room-a/events", "e1", false)
	require.Equal(t, msg{"visitrooms/room-a/events", "e1"}, receive(t, ch, "event"))
	// The test's own clients (the readiness probe connects too).
	require.Contains(t, mq.Log(), " as sub (")
	require.Contains(t, mq.Log(), " as pub (")
}

// sessionSurvives checks that a persistent session, a QoS 1 message queued
// for it while offline, and a retained message survive down, a broker
// outage made by down followed by Restart.
func sessionSurvives(t *testing.T, down func(*mqtttest.MosquittoBroker)) {
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	_, ignore := collector()
	room := connect(t, client{id: "room-a", url: mq.URL(), onMsg: ignore})
	subscribe(t, room, "visitrooms/room-a/cmd", nil)
	publish(t, room, "visitrooms/room-a/availability", "online", true)
	room.Disconnect(250)

	booking := connect(t, client{id: "booking", url: mq.URL(), clean: true})
	publish(t, booking, "visitrooms/room-a/cmd", "start-visit", false)
	booking.Disconnect(250)

	mq.Flush() // the PUBACK came before the save; wait for the save
	down(mq)
	require.False(t, mq.Running())
	mq.Restart()
	require.True(t, mq.Running())

	// Same client id, clean session false: no new subscribe needed.
	ch, h := collector()
	connect(t, client{id: "room-a", url: mq.URL(), onMsg: h})
	require.Equal(t, msg{"visitrooms/room-a/cmd", "start-visit"}, receive(t, ch, "queued cmd after restart"))

	rch, rh := collector()
	guard := connect(t, client{id: "guard", url: mq.URL(), clean: true})
	subscribe(t, guard, "visitrooms/room-a/availability", rh)
	require.Equal(t, msg{"visitrooms/room-a/availability", "online"}, receive(t, rch, "retained after restart"))
}

func TestMosquittoKillRestartKeepsSessionQueueAndRetained(t *testing.T) {
	t.Parallel()
	sessionSurvives(t, (*mqtttest.MosquittoBroker).Kill)
}

func TestMosquittoStopRestartKeepsSessionQueueAndRetained(t *testing.T) {
	t.Parallel()
	sessionSurvives(t, (*mqtttest.MosquittoBroker).Stop)
}

func TestMosquittoRestartWhileRunningKeepsPort(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	url := mq.URL()
	mq.Restart()
	require.Equal(t, url, mq.URL())
	connect(t, client{id: "c", url: mq.URL(), clean: true})
}

func TestMosquittoKillDropsClients(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	c := connect(t, client{id: "c", url: mq.URL(), clean: true})
	mq.Kill()
	mq.Kill() // no-op when already down
	_, err := tryConnect(t, client{id: "d", url: mq.URL(), clean: true})
	require.Error(t, err)
	tok := c.Publish("x", 1, false, "y")
	tok.WaitTimeout(wait)
	require.Error(t, tok.Error())
}

// mosquitto 2.0.11 forgets a SIGTERM that lands between installing its
// handler and entering its loop: stopped the moment its port accepted, 3
// of 100 ran on (measured with a bare loop). Start returns only once it
// answers a CONNECT, and Close sends the signal again until it exits
// (internal/proc's test shows that part failing without the repeat), so a
// broker stopped at once always stops.
func TestMosquittoStoppedTheMomentItAccepts(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true})
	for i := range 30 {
		require.NoError(t, mq.Close(), "stop %d", i+1)
		require.NoError(t, mq.Start(), "start %d", i+2)
	}
}

func TestMosquittoFilesExposed(t *testing.T) {
	t.Parallel()
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{
		TLS: true, Users: map[string]string{"room-a": "pw-a"}, ACLFile: mqtttest.ShippedACL(t),
	})
	require.True(t, strings.HasPrefix(mq.URL(), "ssl://127.0.0.1:"), mq.URL())
	for _, f := range []string{mq.ConfigFile, mq.LogFile, mq.CA.CertFile, mq.CA.KeyFile, mq.ServerCertFile,
		mq.ServerKeyFile, mq.ClientCertFile, mq.ClientKeyFile, mq.PasswordFile} {
		require.FileExists(t, f)
	}
	require.DirExists(t, mq.DataDir)
	pw, err := os.ReadFile(mq.PasswordFile)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(pw), "room-a:$7$"), "password not hashed: %q", pw)
	conf, err := os.ReadFile(mq.ConfigFile)
	require.NoError(t, err)
	require.Contains(t, string(conf), "acl_file "+mqtttest.ShippedACL(t))
	require.Contains(t, string(conf), "allow_anonymous false")
}

// fakeTB records Skip and Fatal and ends the goroutine like the real ones.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped = sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.failed = sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(sprintf(format, args...)) }

func runFake(f *fakeTB, fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}

func TestMosquittoMissingSkipsOrFailsInCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	mqtttest.SetSearchDirsForTest(t, []string{t.TempDir()})

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	runFake(f, func(tb testing.TB) { mqtttest.Mosquitto(tb, mqtttest.MosquittoOptions{AllowAnonymous: true}) })
	require.Contains(t, f.skipped, "apt-get install mosquitto")
	require.Empty(t, f.failed)

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	runFake(f, func(tb testing.TB) { mqtttest.Mosquitto(tb, mqtttest.MosquittoOptions{AllowAnonymous: true}) })
	require.Contains(t, f.failed, "apt-get install mosquitto")
	require.Empty(t, f.skipped)
}

func TestMosquittoRefusesOptionsAdmittingNobody(t *testing.T) {
	f := &fakeTB{TB: t}
	runFake(f, func(tb testing.TB) { mqtttest.Mosquitto(tb, mqtttest.MosquittoOptions{}) })
	if f.skipped != "" {
		t.Skip(f.skipped)
	}
	require.Contains(t, f.failed, "admit no client")
}

func sprint(args ...any) string                 { return fmt.Sprint(args...) }
func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
