package mqtttest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/link/mqtttest"
)

const conf = `# a comment: listener 1
listener 8883
cafile /etc/ca.crt
listener 8884
cafile /etc/ca.crt
  pid_file /run/x.pid
topic +/events out 1 visitrooms/ visitrooms/site-a/
`

func TestKeywordsCountsSettingLinesOnly(t *testing.T) {
	require.Equal(t, map[string]int{"listener": 2, "cafile": 2, "pid_file": 1, "topic": 1}, mqtttest.Keywords(conf))
}

func TestRewrite(t *testing.T) {
	out, err := mqtttest.Rewrite(conf, map[string][]string{
		"listener": {"1 127.0.0.1", "2 127.0.0.1"},
		"cafile":   {"/tmp/ca.crt"},
		"pid_file": {""},
	})
	require.NoError(t, err)
	require.Equal(t, `# a comment: listener 1
listener 1 127.0.0.1
cafile /tmp/ca.crt
listener 2 127.0.0.1
cafile /tmp/ca.crt
topic +/events out 1 visitrooms/ visitrooms/site-a/
`, out)

	same, err := mqtttest.Rewrite(conf, nil)
	require.NoError(t, err)
	require.Equal(t, conf, same)
}

func TestRewriteRefusesWhatTheConfigDoesNotSay(t *testing.T) {
	for name, set := range map[string]map[string][]string{
		"absent keyword":         {"address": {"127.0.0.1:1"}},
		"wrong number of values": {"listener": {"1", "2", "3"}},
		"no value":               {"cafile": {}},
	} {
		_, err := mqtttest.Rewrite(conf, set)
		require.Error(t, err, name)
	}
	_, err := mqtttest.Rewrite(conf, map[string][]string{"address": {"x"}, "listener": {"1", "2", "3"}})
	require.ErrorContains(t, err, "rewrite address: the config never sets it")
	require.ErrorContains(t, err, "rewrite listener: the config sets it 2 times, 3 values given")
}

func TestRewriteKeepsStunnelsForm(t *testing.T) {
	const tunnel = `; a comment: connect = nowhere
foreground = yes
[central]
connect = central.example.org:8884
accept=127.0.0.1:8884
`
	require.Equal(t, map[string]int{"foreground": 1, "[central]": 1, "connect": 1, "accept": 1}, mqtttest.Keywords(tunnel))
	out, err := mqtttest.Rewrite(tunnel, map[string][]string{"connect": {"127.0.0.1:1"}, "accept": {"127.0.0.1:2"}})
	require.NoError(t, err)
	require.Equal(t, `; a comment: connect = nowhere
foreground = yes
[central]
connect = 127.0.0.1:1
accept = 127.0.0.1:2
`, out)
}
