package mqtttest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/mqtttest"
)

// TestDynamicSecurityPluginOnThisMosquitto pins what chose the ACL file
// over mosquitto's dynamic security plugin (docs/security.md): the plugin
// Debian ships with mosquitto 2.0.11 loads and works (clients, groups,
// roles; a subscription its ACL denies is refused with 0x80, which the ACL
// file never does), but a role's ACL does not substitute %u, so one role
// cannot serve every room: each room would need a role of its own. On a
// mosquitto that substitutes it (2.1), the test fails: read the choice
// again.
func TestDynamicSecurityPluginOnThisMosquitto(t *testing.T) {
	testtier.Slow(t, "runs mosquitto with its dynamic security plugin")
	ctrl := testtier.Tool(t, "mosquitto_ctrl", "mosquitto")
	plugin := ""
	for _, pattern := range []string{"/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so", "/usr/local/lib/mosquitto_dynamic_security.so"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			plugin = m[0]
			break
		}
	}
	if plugin == "" {
		testtier.Missing(t, "mosquitto_dynamic_security.so not found; install it with `apt-get install mosquitto`")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "dynamic-security.json")
	out, err := exec.Command(ctrl, "dynsec", "init", state, "admin", "pw-admin").CombinedOutput()
	require.NoError(t, err, "%s", out)
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{AllowAnonymous: true,
		ExtraConfig: "plugin " + plugin + "\nplugin_opt_config_file " + state})
	port := mq.Addr()[strings.LastIndex(mq.Addr(), ":")+1:]
	_, err = strconv.Atoi(port)
	require.NoError(t, err)
	dynsec := func(args ...string) {
		t.Helper()
		out, err := exec.Command(ctrl, append([]string{"-h", "127.0.0.1", "-p", port, "-u", "admin", "-P", "pw-admin", "dynsec"}, args...)...).CombinedOutput()
		require.NoError(t, err, "mosquitto_ctrl dynsec %v: %s", args, out)
		require.NotContains(t, string(out), "Error", "mosquitto_ctrl dynsec %v", args)
	}
	dynsec("createRole", "room")
	dynsec("addRoleACL", "room", "publishClientSend", "visitrooms/%u/state", "allow", "5")
	dynsec("createRole", "watch")
	dynsec("addRoleACL", "watch", "subscribePattern", "#", "allow", "5")
	dynsec("addRoleACL", "watch", "publishClientReceive", "#", "allow", "5")
	dynsec("addRoleACL", "watch", "publishClientSend", "marker", "allow", "5")
	dynsec("createGroup", "rooms")
	dynsec("addGroupRole", "rooms", "room")
	for _, c := range [][2]string{{"room-a", "pw-room-a"}, {"watcher", "pw-watcher"}} {
		dynsec("createClient", c[0], "-p", c[1])
	}
	dynsec("addGroupClient", "rooms", "room-a")
	dynsec("addClientRole", "watcher", "watch", "5")

	ch, h := collector()
	watcher := connect(t, client{id: "watcher", url: mq.URL(), user: "watcher", pass: "pw-watcher", clean: true})
	assert.Equal(t, byte(1), subscribe(t, watcher, "#", h))
	room := connect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: "pw-room-a", clean: true})

	// %u is not substituted: the room may not publish its own state.
	publish(t, room, "visitrooms/room-a/state", "through %u", false)
	publish(t, watcher, "marker", "after %u", false)
	requireOnly(t, ch, msg{"marker", "after %u"})

	// The same grant with the room's id written out works. (The plugin
	// disconnects the clients of a role it changes; the room connects
	// again.)
	dynsec("addRoleACL", "room", "publishClientSend", "visitrooms/room-a/state", "allow", "5")
	room = connect(t, client{id: "room-a", url: mq.URL(), user: "room-a", pass: "pw-room-a", clean: true})
	publish(t, room, "visitrooms/room-a/state", "through its own topic", false)
	require.Equal(t, msg{"visitrooms/room-a/state", "through its own topic"}, receive(t, ch, "the room's state"))

	// A subscription the plugin's ACL does not grant is refused outright.
	assert.Equal(t, byte(0x80), subscribe(t, room, "visitrooms/room-b/cmd", nil))
	_, err = os.Stat(state)
	require.NoError(t, err, "the plugin keeps its state in the file")
}
