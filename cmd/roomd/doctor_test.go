package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/wallclock"
)

// check-config --connect on a real mosquitto with the shipped config, TLS
// and passwords, and the ACL of the shipped site file: right, then with
// each mistake an installer makes planted, checking the message and the
// fix it names.

var doctorUsers = map[string]string{"room-a": "pw-room-a", "room-b": "pw-room-b", "booking": "pw-booking", "guard-7": "pw-guard-7"}

// doctorBroker runs mosquitto with the ACL of the shipped site file as
// edit changes it, and mutate changes its text.
func doctorBroker(t *testing.T, edit func(*access.Site), mutate func(string) string) *mqtttest.MosquittoBroker {
	t.Helper()
	acl := mqtttest.SiteACL(t, edit)
	if mutate != nil {
		b, err := os.ReadFile(acl)
		require.NoError(t, err)
		changed := mutate(string(b))
		require.NotEqual(t, string(b), changed, "the mistake was not planted")
		require.NoError(t, os.WriteFile(acl, []byte(changed), 0o600))
	}
	return mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, ShippedConfig: true, Users: doctorUsers, ACLFile: acl})
}

// doctorConfig is room-a's config for mq, as an installer writes it.
func doctorConfig(t *testing.T, mq *mqtttest.MosquittoBroker, edit func(*configs.Config)) *configs.Config {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "mqtt-password")
	require.NoError(t, os.WriteFile(pw, []byte(doctorUsers["room-a"]+"\n"), 0o600))
	cfg, err := configs.Parse(fmt.Appendf(nil, "room: room-a\nstate_dir: %s\npolicy: {preset: italy}\n"+
		"device: {inputs: {door: {pin: GPIO17}, lock: {pin: GPIO27}, presence: [{pin: GPIO22}], panic: {pin: GPIO23}},"+
		" outputs: {in_use: {pin: GPIO5}, warning: {pin: GPIO6}, alarm_light: {pin: GPIO13}}}\n"+
		"mqtt: {broker: %q, username: room-a, password_file: %s, tls: {ca_file: %s}, connect_timeout: 5s}\n",
		filepath.Join(dir, "state"), mq.URL(), pw, mq.CA.CertFile), "roomd.yaml")
	require.NoError(t, err)
	if edit != nil {
		edit(cfg)
	}
	return cfg
}

func runDoctor(t *testing.T, cfg *configs.Config, now func() time.Time) []checkResult {
	t.Helper()
	if now == nil {
		now = wallclock.Now
	}
	d := &doctor{cfg: cfg, now: now, settle: 300 * time.Millisecond, siteFile: "/etc/mosquitto/site.yaml"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d.run(ctx)
	var b bytes.Buffer
	require.NoError(t, writeReport(&b, d.results))
	t.Logf("check-config --connect:\n%s", b.String())
	return d.results
}

func failures(rs []checkResult) []checkResult {
	var out []checkResult
	for _, r := range rs {
		if r.Status == checkFail {
			out = append(out, r)
		}
	}
	return out
}

// oneFailure asserts that exactly one check failed, on what, with detail
// and fix containing the given texts.
func oneFailure(t *testing.T, rs []checkResult, what, detail, fix string) {
	t.Helper()
	f := failures(rs)
	require.Len(t, f, 1, "%+v", f)
	assert.Contains(t, f[0].What, what)
	assert.Contains(t, f[0].Detail, detail)
	assert.Contains(t, f[0].Fix, fix)
}

func TestCheckConfigConnectPasses(t *testing.T) {
	testtier.Slow(t, "runs mosquitto")
	mq := doctorBroker(t, nil, nil)
	cfg := doctorConfig(t, mq, nil)

	// A command waits in room-a's persistent session while roomd is
	// stopped: the check must leave it there.
	roomd := pahoClient(t, mq, "room-a", false)
	tok := roomd.Subscribe("visitrooms/room-a/cmd", 1, nil)
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	roomd.Disconnect(100)
	booking := pahoClient(t, mq, "booking", true)
	tok = booking.Publish("visitrooms/room-a/cmd", 1, false, "queued while roomd was stopped")
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())

	rs := runDoctor(t, cfg, nil)
	require.Empty(t, failures(rs))
	byWhat := map[string]checkResult{}
	for _, r := range rs {
		byWhat[r.What] = r
	}
	for _, what := range []string{"reach 127.0.0.1:", "TLS", "login as room-a", "publish visitrooms/room-a/availability", "publish visitrooms/room-a/state",
		"publish visitrooms/room-a/reply", "refuse visitrooms/room-a/cmd", "refuse visitrooms/room-a/cmd/room-a",
		"refuse visitrooms/roomd-check-config/cmd/room-a", "refuse visitrooms/roomd-check-config/state", "read only its own commands"} {
		found := false
		for w, r := range byWhat {
			if strings.HasPrefix(w, what) {
				found = true
				assert.Equal(t, checkOK, r.Status, w)
			}
		}
		assert.True(t, found, "no check %q", what)
	}
	assert.Equal(t, checkNote, byWhat["read visitrooms/room-a/cmd/+"].Status, "a read cannot be proved on mosquitto's ACL file")

	// The queued command is still there for roomd.
	got := make(chan string, 4)
	o := paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("roomd-room-a").SetUsername("room-a").SetPassword(doctorUsers["room-a"]).
		SetTLSConfig(mq.TLSConfig()).SetCleanSession(false).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) })
	c := paho.NewClient(o)
	tok = c.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer c.Disconnect(100)
	select {
	case m := <-got:
		assert.Equal(t, "visitrooms/room-a/cmd queued while roomd was stopped", m)
	case <-time.After(10 * time.Second):
		t.Fatal("the command queued for roomd was lost")
	}
}

func pahoClient(t *testing.T, mq *mqtttest.MosquittoBroker, user string, clean bool) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(mq.URL()).SetClientID(user).SetUsername(user).SetPassword(doctorUsers[user]).
		SetTLSConfig(mq.TLSConfig()).SetCleanSession(clean).SetAutoReconnect(false)
	c := paho.NewClient(o)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestCheckConfigConnectNamesEachMistake plants, one at a time, what goes
// wrong on site, on a broker that is right.
func TestCheckConfigConnectNamesEachMistake(t *testing.T) {
	testtier.Slow(t, "runs mosquitto")
	mq := doctorBroker(t, nil, nil)

	t.Run("wrong password", func(t *testing.T) {
		cfg := doctorConfig(t, mq, nil)
		require.NoError(t, os.WriteFile(cfg.MQTT.PasswordFile, []byte("not-the-password\n"), 0o600))
		oneFailure(t, runDoctor(t, cfg, nil), "login as room-a", "refused the user name or password", "mosquitto_passwd /etc/mosquitto/passwd room-a")
	})
	t.Run("unknown CA", func(t *testing.T) {
		other := mqtttest.NewCA(t, t.TempDir(), "another-ca")
		cfg := doctorConfig(t, mq, func(c *configs.Config) { c.MQTT.TLS.CAFile = other.CertFile })
		oneFailure(t, runDoctor(t, cfg, nil), "TLS", "is not signed by the CA in "+other.CertFile, "set mqtt.tls.ca_file to the site's CA certificate")
	})
	t.Run("clock before the certificate's start", func(t *testing.T) {
		cert := readCert(t, mq.ServerCertFile)
		early := cert.NotBefore.Add(-24 * time.Hour)
		cfg := doctorConfig(t, mq, nil)
		oneFailure(t, runDoctor(t, cfg, func() time.Time { return early }), "TLS", "before the start of the broker's certificate", "timedatectl set-ntp true")
	})
	t.Run("a name the certificate does not carry", func(t *testing.T) {
		cfg := doctorConfig(t, mq, func(c *configs.Config) { c.MQTT.TLS.ServerName = "broker.elsewhere.example" })
		oneFailure(t, runDoctor(t, cfg, nil), "TLS", "names localhost, 127.0.0.1, not broker.elsewhere.example", "subjectAltName")
	})
	t.Run("plain MQTT to the TLS port", func(t *testing.T) {
		cfg := doctorConfig(t, mq, func(c *configs.Config) {
			c.MQTT.Broker = strings.Replace(c.MQTT.Broker, "ssl://", "tcp://", 1)
			c.MQTT.TLS = configs.TLS{}
		})
		oneFailure(t, runDoctor(t, cfg, nil), "login", "closed the connection without answering", "use tls://")
	})
	t.Run("nothing listens", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		cfg := doctorConfig(t, mq, func(c *configs.Config) { c.MQTT.Broker = "ssl://" + addr })
		oneFailure(t, runDoctor(t, cfg, nil), "reach "+addr, "connection refused", "is mosquitto running")
	})
	t.Run("roomd is running", func(t *testing.T) {
		cfg := doctorConfig(t, mq, nil)
		dir := filepath.Join(cfg.StateDir, room.JournalDir)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		lock, err := journal.OS{}.Lock(dir)
		require.NoError(t, err)
		defer lock.Close()
		oneFailure(t, runDoctor(t, cfg, nil), "roomd", "roomd is running for this room", "systemctl stop roomd")
	})
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

// TestCheckConfigConnectFindsACLMistakes: an ACL missing a line, an ACL
// without the room, and the old ACL whose pattern lines let a room
// command rooms and read more than its own.
func TestCheckConfigConnectFindsACLMistakes(t *testing.T) {
	testtier.Slow(t, "runs mosquitto")
	t.Run("a line missing", func(t *testing.T) {
		mq := doctorBroker(t, nil, func(acl string) string {
			return strings.Replace(acl, "topic write visitrooms/room-a/info\n", "", 1)
		})
		oneFailure(t, runDoctor(t, doctorConfig(t, mq, nil), nil), "publish visitrooms/room-a/info",
			"lacks the line topic write visitrooms/room-a/info", "write the ACL from the site file again (visitctl acl /etc/mosquitto/site.yaml > /etc/mosquitto/acl")
	})
	t.Run("the room not in the site file", func(t *testing.T) {
		mq := doctorBroker(t, func(s *access.Site) { s.Rooms = []string{"room-b"} }, nil)
		oneFailure(t, runDoctor(t, doctorConfig(t, mq, nil), nil), "publish the room's topics",
			"no block for user room-a", "list room-a under rooms: in /etc/mosquitto/site.yaml")
	})
	t.Run("the old pattern ACL", func(t *testing.T) {
		old := "pattern write visitrooms/%u/availability\npattern write visitrooms/%u/info\npattern write visitrooms/%u/state\n" +
			"pattern write visitrooms/%u/events\npattern write visitrooms/%u/alerts\npattern write visitrooms/%u/reply\n" +
			"pattern write visitrooms/%u/sim/outputs\npattern read visitrooms/%u/cmd\npattern read visitrooms/%u/cmd/+\n" +
			"pattern read visitrooms/%u/sim/set\npattern write visitrooms/+/cmd/%u\npattern read visitrooms/+/state\n"
		mq := doctorBroker(t, nil, func(string) string { return old })
		b := pahoClient(t, mq, "room-b", true)
		tok := b.Publish("visitrooms/room-b/state", 1, true, `{"room":"room-b"}`)
		require.True(t, tok.WaitTimeout(5*time.Second))
		require.NoError(t, tok.Error())
		f := failures(runDoctor(t, doctorConfig(t, mq, nil), nil))
		var what []string
		for _, r := range f {
			what = append(what, r.What)
			assert.Contains(t, r.Fix, "visitctl acl", r.What)
		}
		assert.ElementsMatch(t, []string{"refuse visitrooms/room-a/cmd/room-a", "refuse visitrooms/roomd-check-config/cmd/room-a", "read only its own commands"}, what)
		for _, r := range f {
			if r.What == "read only its own commands" {
				assert.Contains(t, r.Detail, "visitrooms/room-b/state")
			}
		}
	})
}

// TestCheckConfigConnectFromTheCommandLine: roomd check-config --connect
// prints the checks and fails when one failed.
func TestCheckConfigConnectFromTheCommandLine(t *testing.T) {
	testtier.Slow(t, "runs mosquitto")
	mq := doctorBroker(t, nil, nil)
	cfg := doctorConfig(t, mq, nil)
	y, err := cfg.YAML()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "roomd.yaml")
	require.NoError(t, os.WriteFile(file, y, 0o600))
	var out, errOut bytes.Buffer
	ctx := context.Background()
	require.NoError(t, run(ctx, []string{"roomd", "check-config", "--connect", file}, os.Getenv, &out, &errOut))
	assert.Contains(t, out.String(), "ok    login as room-a")
	assert.NotContains(t, out.String(), "FAIL")

	require.NoError(t, os.WriteFile(cfg.MQTT.PasswordFile, []byte("wrong\n"), 0o600))
	out.Reset()
	err = run(ctx, []string{"roomd", "check-config", "--connect", file}, os.Getenv, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 of 3 checks failed")
	assert.Contains(t, out.String(), "FAIL  login as room-a: the broker refused the user name or password")
	assert.Contains(t, out.String(), "      fix: the password in "+cfg.MQTT.PasswordFile)
}
