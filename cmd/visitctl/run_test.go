package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/buildinfo"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"start"}, `want "visitctl start ROOM --visit ID --duration D", got 0 arguments`},
		{[]string{"start", "room-1", "--duration", "1h"}, "--visit ID is required"},
		{[]string{"start", "room-1", "--visit", "v 1", "--duration", "1h"}, `--visit "v 1"`},
		{[]string{"start", "room-1", "--visit", "v1"}, "--duration must be positive"},
		{[]string{"start", "room-1", "--visit", "v1", "--duration", "soon"}, `invalid value "soon" for flag -duration`},
		{[]string{"start", "Room 1", "--visit", "v1", "--duration", "1h"}, `room id "Room 1"`},
		{[]string{"extend", "room-1"}, "--by must be positive"},
		{[]string{"extend", "room-1", "--by", "-5m"}, "--by must be positive"},
		{[]string{"end", "room-1", "extra"}, `want "visitctl end ROOM", got 2 arguments`},
		{[]string{"ack", "room-1"}, `want "visitctl ack ROOM ALERT_ID"`},
		{[]string{"service", "room-1", "maybe"}, `want on or off, got "maybe"`},
		{[]string{"state", "room-1", "--password", "x"}, "flag provided but not defined: -password"},
		{[]string{"--timeout", "0s", "state", "room-1"}, "--timeout must be positive"},
		{[]string{"--base", "a/#", "state", "room-1"}, "--base"},
		{[]string{"--broker", "127.0.0.1:1883", "state", "room-1"}, "want scheme://host:port"},
		{[]string{"--broker", "ws://127.0.0.1:80", "state", "room-1"}, `scheme "ws" is not supported`},
		{[]string{"--ca-file", "/ca.pem", "state", "room-1"}, "need a TLS broker URL"},
		{[]string{"--broker", "ssl://127.0.0.1:8883", "--cert-file", "/c.pem", "state", "room-1"}, "--cert-file and --key-file go together"},
		{[]string{"--password-file", "/pw", "state", "room-1"}, "--password-file needs --username"},
		{[]string{"sim", "room-1"}, "want KEY=VALUE, e.g. door=open"},
		{[]string{"watch", "extra"}, "watch takes no arguments"},
		{[]string{"watch", "--heartbeat", "0s"}, "--heartbeat must be positive"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"visitctl"}, tc.args...), func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		require.Error(t, err, "%q", tc.args)
		assert.Equal(t, ExitUsage, exitCode(err), "%q: %v", tc.args, err)
		assert.ErrorContains(t, err, tc.want, "%q", tc.args)
	}
}

func TestEnvironmentErrors(t *testing.T) {
	env := map[string]string{"VISITCTL_TIMEOUT": "ages"}
	err := run(context.Background(), []string{"visitctl", "state", "room-1"}, func(k string) string { return env[k] }, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	assert.Equal(t, ExitUsage, exitCode(err))
	assert.ErrorContains(t, err, `environment VISITCTL_TIMEOUT="ages"`)
}

func TestParseCommand(t *testing.T) {
	env := map[string]string{"VISITCTL_BASE": "prison-a", "VISITCTL_CLIENT_ID": "console-1"}
	g, err := defaultGlobals(func(k string) string { return env[k] })
	require.NoError(t, err)
	// Flags after the positional arguments, global flags after the command.
	req, help, err := parseCommand(&g, "service", []string{"room-2", "off", "--reason", "broken lamp", "--timeout", "3s"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.False(t, help)
	assert.Equal(t, "room-2", req.room)
	assert.Equal(t, "set_service", req.msg.Action)
	require.NotNil(t, req.msg.InService)
	assert.False(t, *req.msg.InService)
	assert.Equal(t, "broken lamp", req.msg.Reason)
	assert.Equal(t, "prison-a", g.base)
	assert.Equal(t, "console-1", g.clientID)
	assert.Equal(t, "3s", g.timeout.String())

	g, err = defaultGlobals(func(string) string { return "" })
	require.NoError(t, err)
	req, _, err = parseCommand(&g, "start", []string{"--visit", "B-17", "room-3", "--duration", "90m"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "room-3", req.room)
	assert.Equal(t, "B-17", req.msg.VisitID)
	assert.Equal(t, "1h30m0s", req.msg.Duration)
	assert.Regexp(t, `^visitctl-[0-9a-f]{12}$`, g.clientID)
	assert.Equal(t, "tcp://127.0.0.1:1883", g.broker)
	assert.Equal(t, "visitrooms", g.base)

	// "--" ends the flags: an alert id may start with a dash.
	req, _, err = parseCommand(&g, "ack", []string{"room-3", "--", "-odd"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "-odd", req.msg.AlertID)
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"start", "-h"}} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"visitctl"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &bytes.Buffer{})
		require.NoError(t, err, "%q", args)
		assert.Contains(t, out.String(), "Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 no reply in time, 4 broker unreachable.")
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	g := globals{broker: "tcp://127.0.0.1:1883", username: "console", passwordFile: pw, clientID: "x"}
	opts, err := g.clientOptions()
	require.NoError(t, err)
	assert.Equal(t, "s3cret", opts.Password)

	require.NoError(t, os.WriteFile(pw, []byte("\n"), 0o600))
	_, err = g.clientOptions()
	assert.ErrorContains(t, err, "is empty")

	g.passwordFile = filepath.Join(dir, "missing")
	_, err = g.clientOptions()
	assert.ErrorContains(t, err, "read password file")

	g = globals{broker: "ssl://127.0.0.1:8883", caFile: pw, clientID: "x"}
	require.NoError(t, os.WriteFile(pw, []byte("not a certificate"), 0o600))
	_, err = g.clientOptions()
	assert.ErrorContains(t, err, "holds no PEM certificate")
}

func TestParseSim(t *testing.T) {
	for args, want := range map[string]string{
		"door=open lock=locked presence=true panic=pressed staff=off fault=door": `{"door":"open","lock":"locked","presence":"present","panic":"pressed","staff":"released","fault":"door"}`,
		"heal=presence presence=absent":                                          `{"presence":"absent","heal":"presence"}`,
		"wire:panic:bed=bridged wire:door=cut":                                   `{"wire":{"door":"cut","panic:bed":"bridged"}}`,
		"panic:bed=pressed bounce=door:open:5:100ms":                             `{"points":{"bed":"pressed"},"bounce":{"input":"door","to":"open","count":5,"every_ms":100}}`,
	} {
		got, err := parseSim(strings.Fields(args))
		require.NoError(t, err, args)
		assert.JSONEq(t, want, string(got.Encode()), args)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"door"}, `"door" is not KEY=VALUE`},
		{[]string{"window=open"}, `unknown key "window"`},
		{[]string{"door=ajar"}, `unknown level "ajar" (want "closed", "open" or "unknown")`},
		{[]string{"lock=open"}, `unknown level "open" (want "unlocked", "locked" or "unknown")`},
		{[]string{"presence=maybe"}, `unknown level "maybe"`},
		{[]string{"fault=window"}, `fault: unknown input "window"`},
		{[]string{"door=open", "door=closed"}, "key door given twice"},
		{[]string{"wire:panic:bed=glued"}, `"glued" is not a wire condition`},
		{[]string{"wire:window=cut"}, `unknown input "window"`},
		{[]string{"wire:door=cut", "wire:door=sound"}, "wire of door given twice"},
		{[]string{"wire=cut"}, `unknown key "wire"`},
	} {
		_, err := parseSim(tc.args)
		require.Error(t, err, "%q", tc.args)
		assert.Equal(t, ExitUsage, exitCode(err))
		assert.ErrorContains(t, err, tc.want, "%q", tc.args)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"--broker", "tcp://127.0.0.1:1", "--version"}} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"visitctl"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &bytes.Buffer{})
		require.NoError(t, err, "%q", args)
		assert.Equal(t, "visitctl "+buildinfo.Version()+"\n", out.String(), "%q", args)
	}
}
