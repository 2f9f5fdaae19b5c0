package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/link/mqtttest"
)

// env is a fake environment.
type env map[string]string

func (e env) get(name string) string { return e[name] }

// serveHelp is what guardboard serve -h prints.
func serveHelp(t *testing.T) string {
	t.Helper()
	var out, errb bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"guardboard", "serve", "-h"}, env{}.get,
		strings.NewReader(""), &out, &errb))
	return errb.String()
}

// Every flag has a variable, and -h names it beside the flag.
func TestServeHelpNamesEveryVariable(t *testing.T) {
	help := serveHelp(t)
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help, -1)
	require.Len(t, flags, 22, "serve's flags:\n%s", help)
	for _, f := range flags {
		// The flag's entry runs until the next flag.
		entry := help[strings.Index(help, f[0]):]
		if next := strings.Index(entry[1:], "\n  -"); next >= 0 {
			entry = entry[:next+1]
		}
		assert.Contains(t, entry, "[$"+envName(f[1])+"]", "the entry of -%s", f[1])
	}
	assert.Contains(t, help, "A flag on the\ncommand line wins over its variable")
	assert.Equal(t, "GUARDBOARD_BROKER_PASSWORD_FILE", envName("broker-password-file"))
}

// allVariables sets every serve setting to a value other than its default.
var allVariables = env{
	"GUARDBOARD_LISTEN":                   "0.0.0.0:8443",
	"GUARDBOARD_ACCOUNTS":                 "/etc/guardboard/accounts",
	"GUARDBOARD_TITLE":                    "Casa circondariale",
	"GUARDBOARD_LOG_LEVEL":                "debug",
	"GUARDBOARD_BROKER":                   "ssl://broker.example:8883",
	"GUARDBOARD_BROKER_USER":              "guard-station-2",
	"GUARDBOARD_BROKER_PASSWORD_FILE":     "/etc/guardboard/mqtt-password",
	"GUARDBOARD_BASE":                     "site-b/visitrooms",
	"GUARDBOARD_BROKER_CA":                "/etc/guardboard/ca.crt",
	"GUARDBOARD_BROKER_CERT":              "/etc/guardboard/client.crt",
	"GUARDBOARD_BROKER_KEY":               "/etc/guardboard/client.key",
	"GUARDBOARD_TLS_CERT":                 "/etc/guardboard/board.crt",
	"GUARDBOARD_TLS_KEY":                  "/etc/guardboard/board.key",
	"GUARDBOARD_SIM_DRIVER_USER":          "sim-driver",
	"GUARDBOARD_SIM_DRIVER_PASSWORD_FILE": "/etc/guardboard/sim-password",
	"GUARDBOARD_STATE_FILE":               "/var/lib/guardboard/marks.json",
	"GUARDBOARD_INSECURE_HTTP":            "true",
	"GUARDBOARD_ROOMS":                    "room-1,room-2,visit-*",
	"GUARDBOARD_STATE_DIR":                "/var/lib/guardboard",
	"GUARDBOARD_SHIFTS":                   "07:00,19:00",
	"GUARDBOARD_METRICS_TEXTFILE":         "/run/prometheus-node-exporter/guardboard.prom",
	"GUARDBOARD_METRICS_EVERY":            "30s",
}

func TestServeSettingsFromTheEnvironment(t *testing.T) {
	// The table covers every variable -h names but --accounts' twin, which
	// is there too: the lists are the same.
	var named []string
	for _, m := range regexp.MustCompile(`\[\$(GUARDBOARD_[A-Z_]+)\]`).FindAllStringSubmatch(serveHelp(t), -1) {
		named = append(named, m[1])
	}
	var set []string
	for k := range allVariables {
		set = append(set, k)
	}
	slices.Sort(named)
	slices.Sort(set)
	require.Equal(t, named, set, "the table sets every variable")

	c, err := parseServe(nil, allVariables.get, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, serveFlags{
		listen: "0.0.0.0:8443", accounts: "/etc/guardboard/accounts", title: "Casa circondariale", logLevel: "debug",
		broker: "ssl://broker.example:8883", brokerUser: "guard-station-2", brokerPasswordFile: "/etc/guardboard/mqtt-password",
		base: "site-b/visitrooms", brokerCA: "/etc/guardboard/ca.crt", brokerCert: "/etc/guardboard/client.crt",
		brokerKey: "/etc/guardboard/client.key", tlsCert: "/etc/guardboard/board.crt", tlsKey: "/etc/guardboard/board.key",
		simUser: "sim-driver", simPasswordFile: "/etc/guardboard/sim-password", stateFile: "/var/lib/guardboard/marks.json",
		rooms: "room-1,room-2,visit-*", stateDir: "/var/lib/guardboard", shifts: "07:00,19:00",
		insecureHTTP: true, metricsTextfile: "/run/prometheus-node-exporter/guardboard.prom", metricsEvery: 30 * time.Second,
	}, c.serveFlags)
	assert.Equal(t, "GUARDBOARD_LISTEN", c.name("listen"))
}

func TestServeFlagsWinOverTheEnvironment(t *testing.T) {
	c, err := parseServe([]string{"--listen", "127.0.0.1:9000", "--title", "From the flag", "--insecure-http=false"},
		allVariables.get, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9000", c.listen)
	assert.Equal(t, "From the flag", c.title)
	assert.False(t, c.insecureHTTP)
	assert.Equal(t, "ssl://broker.example:8883", c.broker, "the others still come from the environment")
	assert.Equal(t, "--listen", c.name("listen"))
	assert.Equal(t, "GUARDBOARD_BROKER", c.name("broker"))
}

func TestServeEmptyVariableIsUnset(t *testing.T) {
	c, err := parseServe(nil, env{"GUARDBOARD_ACCOUNTS": "a", "GUARDBOARD_BROKER": "tcp://127.0.0.1:1883",
		"GUARDBOARD_TITLE": "", "GUARDBOARD_BROKER_USER": "", "GUARDBOARD_INSECURE_HTTP": ""}.get, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "Visit rooms", c.title)
	assert.Equal(t, board.DefaultUsername, c.brokerUser)
	assert.Equal(t, "127.0.0.1:8080", c.listen)
	assert.False(t, c.insecureHTTP)
	assert.Equal(t, "--title/GUARDBOARD_TITLE", c.name("title"), "not given: both ways")
}

// A bad value is refused at start with the variable's name, before
// anything is opened or dialled.
func TestServeBadVariablesAreNamed(t *testing.T) {
	dir := t.TempDir()
	accounts := filepath.Join(dir, "accounts")
	require.NoError(t, board.AccountsFile{Path: accounts, Cost: 4}.Add("guard-7", "a long enough password"))
	notPEM := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644))
	base := env{"GUARDBOARD_ACCOUNTS": accounts, "GUARDBOARD_BROKER": "tcp://127.0.0.1:1"}
	for _, tc := range []struct {
		set   env
		want  string
		usage bool
	}{
		{env{"GUARDBOARD_INSECURE_HTTP": "yes"}, `GUARDBOARD_INSECURE_HTTP="yes": want true or false`, true},
		{env{"GUARDBOARD_LOG_LEVEL": "loud"}, `GUARDBOARD_LOG_LEVEL "loud": want debug, info, warn or error`, true},
		{env{"GUARDBOARD_BROKER": "broker.example:8883"}, `GUARDBOARD_BROKER: mqtt broker URL "broker.example:8883": want scheme://host:port`, true},
		{env{"GUARDBOARD_BROKER": "https://broker.example"}, `GUARDBOARD_BROKER: mqtt broker URL "https://broker.example": unknown scheme "https"`, true},
		{env{"GUARDBOARD_BASE": "visitrooms/#"}, `GUARDBOARD_BASE: topic base "visitrooms/#" contains a wildcard`, true},
		{env{"GUARDBOARD_BROKER_USER": "Maria Rossi"}, `GUARDBOARD_BROKER_USER "Maria Rossi": want 1 to 64`, true},
		{env{"GUARDBOARD_LISTEN": "8080"}, `GUARDBOARD_LISTEN "8080": want host:port`, true},
		{env{"GUARDBOARD_ROOMS": "Room 1"}, `GUARDBOARD_ROOMS: room "Room": want a room id`, true},
		{env{"GUARDBOARD_SHIFTS": "6"}, `GUARDBOARD_SHIFTS: shift start "6": want HH:MM`, true},
		{env{"GUARDBOARD_TLS_CERT": "/etc/guardboard/board.crt"}, `GUARDBOARD_TLS_CERT and --tls-key/GUARDBOARD_TLS_KEY go together`, true},
		{env{"GUARDBOARD_BROKER_KEY": "k"}, `--broker-cert/GUARDBOARD_BROKER_CERT and GUARDBOARD_BROKER_KEY go together`, true},
		{env{"GUARDBOARD_SIM_DRIVER_PASSWORD_FILE": "p"}, `GUARDBOARD_SIM_DRIVER_PASSWORD_FILE needs --sim-driver-user/GUARDBOARD_SIM_DRIVER_USER`, true},
		{env{"GUARDBOARD_ACCOUNTS": ""}, `serve needs --accounts FILE (or GUARDBOARD_ACCOUNTS in the environment)`, true},
		{env{"GUARDBOARD_BROKER": ""}, `serve needs --broker URL (or GUARDBOARD_BROKER in the environment)`, true},
		{env{"GUARDBOARD_LISTEN": "0.0.0.0:0"}, `GUARDBOARD_LISTEN 0.0.0.0:0 is not loopback: serve the board over HTTPS (--tls-cert/GUARDBOARD_TLS_CERT, --tls-key/GUARDBOARD_TLS_KEY), or accept passwords in clear with --insecure-http/GUARDBOARD_INSECURE_HTTP`, true},
		// Files are opened before the board starts: a wrong path is named too.
		{env{"GUARDBOARD_ACCOUNTS": filepath.Join(dir, "none")}, `GUARDBOARD_ACCOUNTS: read accounts file: stat ` + filepath.Join(dir, "none"), false},
		{env{"GUARDBOARD_BROKER_PASSWORD_FILE": filepath.Join(dir, "none")}, `broker: GUARDBOARD_BROKER_PASSWORD_FILE: read password file`, false},
		{env{"GUARDBOARD_BROKER_CA": notPEM}, `broker tls: GUARDBOARD_BROKER_CA: CA file ` + notPEM + ` holds no PEM certificate`, false},
		{env{"GUARDBOARD_TLS_CERT": notPEM, "GUARDBOARD_TLS_KEY": notPEM}, `board tls: GUARDBOARD_TLS_CERT, GUARDBOARD_TLS_KEY:`, false},
	} {
		e := env{}
		for k, v := range base {
			e[k] = v
		}
		for k, v := range tc.set {
			e[k] = v
		}
		var errb bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a setting that passed would serve until ctx ends: end it at once
		err := run(ctx, []string{"guardboard", "serve"}, e.get, strings.NewReader(""), io.Discard, &errb)
		if assert.Error(t, err, "%v", tc.set) {
			assert.Contains(t, err.Error(), tc.want, "%v", tc.set)
			var ue *usageError
			assert.Equal(t, tc.usage, errors.As(err, &ue), "a usage error (exit 2): %v", tc.set)
		}
	}
	// The same value on the command line is named as the flag.
	_, err := parseServe([]string{"--log-level", "loud"}, base.get, io.Discard)
	assert.ErrorContains(t, err, `serve: --log-level "loud": want debug`)
	_, err = parseServe([]string{"-h"}, base.get, io.Discard)
	assert.ErrorIs(t, err, flag.ErrHelp)
}

// The board runs from its environment alone, as the Debian package's unit
// starts it: it listens where GUARDBOARD_LISTEN says, shows
// GUARDBOARD_TITLE and connects to GUARDBOARD_BROKER as
// GUARDBOARD_BROKER_USER.
func TestServeFromTheEnvironmentAlone(t *testing.T) {
	dir := t.TempDir()
	accounts := filepath.Join(dir, "accounts")
	require.NoError(t, board.AccountsFile{Path: accounts, Cost: 4}.Add("guard-7", "a long enough password"))
	e := env{
		"GUARDBOARD_ACCOUNTS":    accounts,
		"GUARDBOARD_BROKER":      mqtttest.Embedded(t),
		"GUARDBOARD_BROKER_USER": "guard-station-env",
		"GUARDBOARD_LISTEN":      "127.0.0.1:0",
		"GUARDBOARD_TITLE":       "Site from the environment",
		"GUARDBOARD_STATE_FILE":  filepath.Join(dir, "marks.json"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logr, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"guardboard", "serve"}, e.get, strings.NewReader(""), io.Discard, logw)
		logw.Close()
	}()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(logr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // the test reads only the first lines
			}
		}
		close(lines)
	}()
	var url string
	connected := false
	var seen strings.Builder
	timeout := time.After(60 * time.Second)
	for url == "" || !connected {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended: %v\n%s", <-done, seen.String())
			}
			seen.WriteString(line + "\n")
			if m := regexp.MustCompile(`msg="guard station board" url=(\S+)`).FindStringSubmatch(line); m != nil {
				url = m[1]
			}
			if strings.Contains(line, `msg="connected to the broker"`) {
				assert.Contains(t, line, "username=guard-station-env")
				connected = true
			}
		case <-timeout:
			t.Fatalf("the board did not listen and connect; its log:\n%s", seen.String())
		}
	}
	resp, err := http.Get(url + "login")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "Site from the environment — guard station")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not end with its context")
	}
}

// The Debian package's /etc/default/guardboard names every variable, each
// with the value it means (a commented one with the flag's own default), in
// the syntax systemd's EnvironmentFile= and a shell read alike, and the
// settings it leaves on start a board on loopback once the broker is named.
func TestDebianDefaultsFile(t *testing.T) {
	data, err := os.ReadFile("../../packaging/guardboard/default")
	require.NoError(t, err)
	var defaults serveFlags
	fs := serveFlagSet(&defaults, io.Discard)
	known := map[string]*flag.Flag{}
	fs.VisitAll(func(fl *flag.Flag) { known[envName(fl.Name)] = fl })

	// KEY=value or KEY="value", with nothing either parser reads another way.
	assignment := regexp.MustCompile(`^(#?)(GUARDBOARD_[A-Z_]+)=("[^"\\$` + "`" + `]*"|[^\s"'\\$` + "`" + `;&|<>()#]*)$`)
	set, mentioned := env{}, map[string]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if strings.TrimSpace(line) == "" || (strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "#GUARDBOARD_")) {
			continue
		}
		m := assignment.FindStringSubmatch(line)
		if !assert.NotNil(t, m, "line %d: %q is neither a comment nor a plain assignment", n+1, line) {
			continue
		}
		fl := known[m[2]]
		if !assert.NotNil(t, fl, "line %d: %s is no variable of guardboard serve", n+1, m[2]) {
			continue
		}
		value := strings.Trim(m[3], `"`)
		mentioned[m[2]] = true
		if m[1] == "" {
			assert.NotContains(t, set, m[2], "line %d: %s set twice", n+1, m[2])
			set[m[2]] = value
		} else if fl.DefValue != "" {
			assert.Equal(t, fl.DefValue, value, "line %d: a commented %s shows the default", n+1, m[2])
		}
	}
	for name := range known {
		assert.True(t, mentioned[name], "the file says nothing of %s", name)
	}

	assert.Equal(t, "", set["GUARDBOARD_BROKER"], "the broker is the installer's to name")
	set["GUARDBOARD_BROKER"] = "tls://broker.example:8883"
	c, err := parseServe(nil, set.get, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", c.listen, "loopback: no password crosses the network in clear")
	assert.False(t, c.insecureHTTP)
	assert.Equal(t, "/etc/guardboard/accounts", c.accounts)
	assert.Equal(t, "/etc/guardboard/mqtt-password", c.brokerPasswordFile)
	assert.Equal(t, "/etc/guardboard/ca.crt", c.brokerCA)
	assert.Equal(t, "/var/lib/guardboard/marks.json", c.stateFile, "in the unit's StateDirectory")
	assert.Equal(t, board.DefaultUsername, c.brokerUser)
	assert.Equal(t, "/var/lib/guardboard", c.stateDir, "the records in the unit's StateDirectory")
	assert.Equal(t, "room-*", c.rooms)
}
