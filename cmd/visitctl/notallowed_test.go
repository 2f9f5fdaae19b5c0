package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room/roomtest"
)

// TestSaysNotAllowedNeverIsRoomdRunning: on a broker with the shipped
// config and the ACL of the shipped site file, with room-a running, an
// identity the broker withholds everything from, a read-only console that
// may not send, a wrong password and a stopped room each get their own
// message, naming the identity and the topic; none asks whether roomd is
// running.
func TestSaysNotAllowedNeverIsRoomdRunning(t *testing.T) {
	testtier.Slow(t, "runs mosquitto and a room")
	users := map[string]string{"room-a": "pw-room-a", "guard-console": "pw-console", "ghost": "pw-ghost", "guard-7": "pw-guard-7"}
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{TLS: true, ShippedConfig: true, Users: users, ACLFile: mqtttest.SiteACL(t, nil)})
	dir := t.TempDir()
	pwFile := func(user, pw string) string {
		p := filepath.Join(dir, user)
		require.NoError(t, os.WriteFile(p, []byte(pw+"\n"), 0o600))
		return p
	}
	r := roomtest.Start(t, roomtest.Options{Broker: mq.URL(), Room: "room-a", Config: func(c *configs.Config) {
		c.MQTT.Username, c.MQTT.PasswordFile, c.MQTT.TLS.CAFile = "room-a", pwFile("room-a", users["room-a"]), mq.CA.CertFile
	}})
	as := func(user, pw string, args ...string) (string, error) {
		var out, errOut strings.Builder
		env := map[string]string{"VISITCTL_BROKER": mq.URL(), "VISITCTL_CA_FILE": mq.CA.CertFile,
			"VISITCTL_USERNAME": user, "VISITCTL_PASSWORD_FILE": pwFile(user, pw), "VISITCTL_TIMEOUT": "3s"}
		err := run(context.Background(), append([]string{"visitctl"}, args...), func(k string) string { return env[k] },
			strings.NewReader(""), &out, &errOut)
		return out.String(), err
	}
	// The room is up (as guard-7 sees it).
	out, err := as("guard-7", users["guard-7"], "state", "room-a")
	require.NoError(t, err, out)

	// An identity the site file does not list: the broker lets it log in
	// and withholds everything.
	out, err = as("ghost", users["ghost"], "rooms", "--settle", "300ms")
	require.NoError(t, err)
	assert.Contains(t, out, "nothing under visitrooms/ reached ghost: no room has published there yet, or ghost is not allowed to read visitrooms/+/{info,availability,state}")
	_, err = as("ghost", users["ghost"], "state", "room-a")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing of room room-a reached ghost: not allowed to read visitrooms/room-a/availability and visitrooms/room-a/reply as ghost?")
	assert.NotContains(t, err.Error(), "is roomd running")
	assert.Equal(t, ExitTimeout, exitCode(err))

	// A read-only console reads the room, and may not send.
	out, err = as("guard-console", users["guard-console"], "rooms", "--settle", "300ms")
	require.NoError(t, err)
	assert.Contains(t, out, "room-a ")
	_, err = as("guard-console", users["guard-console"], "state", "room-a")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "though it is online: not allowed to send on visitrooms/room-a/cmd/guard-console as guard-console?")
	assert.NotContains(t, err.Error(), "is roomd running")

	// A wrong password.
	_, err = as("guard-7", "not-the-password", "state", "room-a")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the broker refused the login of user guard-7")
	assert.Equal(t, ExitUnreachable, exitCode(err))

	// A stopped room says so itself.
	r.Stop()
	_, err = as("guard-7", users["guard-7"], "state", "room-a")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the room is offline (its availability says so)")
}
