package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/contract"
)

const usage = `usage: visitctl [global flags] COMMAND [arguments and flags]

Commands (each waits for the room's reply, see docs/visitctl.md):
  start ROOM --visit ID --duration D   start a visit (e.g. --duration 1h30m)
  extend ROOM --by D                   extend the running visit
  end ROOM                             end the running visit
  ack ROOM ALERT_ID                    acknowledge an alert
  service ROOM on|off [--reason TEXT]  put the room in or out of service
  state ROOM                           show the room's state
  sim ROOM KEY=VALUE...                drive a simulated room's inputs:
                                       door=open|closed lock=locked|unlocked
                                       presence=true|false panic=true|false
                                       panic:POINT=pressed staff=true|false
                                       fault=INPUT heal=INPUT wire:TARGET=bridged|cut|sound
                                       stick=OUTPUT bounce=INPUT:TO:COUNT[:EVERY]
  watch [--once] [--heartbeat D]       live board of every room
  rooms                                the rooms from their retained info and
                                       availability: version, policy, online, last seen
  decommission ROOM [--yes] [--force]  clear every retained topic of a removed room
                                       (asks first; refuses while it reports online)
  acl SITE_FILE [--check ACL_FILE]     mosquitto's ACL for the identities of a site file
                                       (configs/mosquitto/site.yaml), or whether an
                                       installed one is still that
  version                              print visitctl's version (also: --version)
  help                                 show this help

Global flags (before or after the command; environment fallback in brackets):
  --broker URL          broker URL, tcp:// or ssl:// / tls:// [VISITCTL_BROKER] (default tcp://127.0.0.1:1883)
  --base BASE           topic base [VISITCTL_BASE] (default visitrooms)
  --username NAME       MQTT username [VISITCTL_USERNAME]
  --password-file FILE  file holding the MQTT password [VISITCTL_PASSWORD_FILE]
  --ca-file FILE        CA certificates for TLS (default: system roots) [VISITCTL_CA_FILE]
  --cert-file FILE      client certificate for TLS [VISITCTL_CERT_FILE]
  --key-file FILE       client key for TLS [VISITCTL_KEY_FILE]
  --server-name NAME    TLS server name (default: the broker host) [VISITCTL_SERVER_NAME]
  --timeout D           how long to wait for the broker and the reply [VISITCTL_TIMEOUT] (default 10s)
  --client-id ID        MQTT client id [VISITCTL_CLIENT_ID] (default visitctl-<random>)
  --json                machine-readable output [VISITCTL_JSON]

Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 no reply in time, 4 broker unreachable.
`

// globals are the flags every command takes.
type globals struct {
	broker, base, username, passwordFile  string
	caFile, certFile, keyFile, serverName string
	clientID                              string
	timeout                               time.Duration
	json                                  bool
}

// envFlag names the environment fallback of each global flag.
var envFlag = map[string]string{
	"broker":        "VISITCTL_BROKER",
	"base":          "VISITCTL_BASE",
	"username":      "VISITCTL_USERNAME",
	"password-file": "VISITCTL_PASSWORD_FILE",
	"ca-file":       "VISITCTL_CA_FILE",
	"cert-file":     "VISITCTL_CERT_FILE",
	"key-file":      "VISITCTL_KEY_FILE",
	"server-name":   "VISITCTL_SERVER_NAME",
	"timeout":       "VISITCTL_TIMEOUT",
	"client-id":     "VISITCTL_CLIENT_ID",
	"json":          "VISITCTL_JSON",
}

// register adds the global flags to fs with their defaults, so they are
// accepted before and after the command name.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.broker, "broker", g.broker, "broker `URL`")
	fs.StringVar(&g.base, "base", g.base, "topic `base`")
	fs.StringVar(&g.username, "username", g.username, "MQTT `username`")
	fs.StringVar(&g.passwordFile, "password-file", g.passwordFile, "`file` holding the MQTT password")
	fs.StringVar(&g.caFile, "ca-file", g.caFile, "CA certificates `file` for TLS")
	fs.StringVar(&g.certFile, "cert-file", g.certFile, "client certificate `file` for TLS")
	fs.StringVar(&g.keyFile, "key-file", g.keyFile, "client key `file` for TLS")
	fs.StringVar(&g.serverName, "server-name", g.serverName, "TLS server `name`")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "how long to wait for the broker and the reply")
	fs.StringVar(&g.clientID, "client-id", g.clientID, "MQTT client `id`")
	fs.BoolVar(&g.json, "json", g.json, "machine-readable output")
}

// defaultGlobals returns the defaults, overridden by the environment.
func defaultGlobals(getenv func(string) string) (globals, error) {
	g := globals{broker: "tcp://127.0.0.1:1883", base: contract.DefaultBase, timeout: 10 * time.Second}
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envFlag[f.Name]
		v := getenv(name)
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, usagef("environment %s=%q: %v", name, v, err))
		}
	})
	return g, errors.Join(errs...)
}

// check validates the global flags and fills the client id.
func (g *globals) check() error {
	if err := contract.ValidateBase(g.base); err != nil {
		return usagef("--base: %v", err)
	}
	if g.timeout <= 0 {
		return usagef("--timeout must be positive, got %s", g.timeout)
	}
	if g.clientID == "" {
		g.clientID = "visitctl-" + randomHex(6)
	}
	if _, err := g.clientOptions(); err != nil {
		return err
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// parseInterleaved parses args with fs, allowing flags after positional
// arguments ("start room-1 --visit v1"); "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// run is visitctl's main: args as os.Args, getenv as os.Getenv, stdin for
// the answers to questions (decommission). It returns when the command is
// done or ctx is cancelled; exitCode maps its error to the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	g, err := defaultGlobals(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("visitctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	showVersion := fs.Bool("version", false, "print visitctl's version")
	if len(args) == 0 {
		args = []string{"visitctl"}
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return usagef("%v", err)
	}
	if *showVersion {
		fmt.Fprintln(stdout, "visitctl", buildinfo.Version())
		return nil
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command")
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version":
		fmt.Fprintln(stdout, "visitctl", buildinfo.Version())
		return nil
	case "watch":
		return runWatch(ctx, g, rest, stdout)
	case "sim":
		return runSim(ctx, g, rest, stdout)
	case "rooms":
		return runRooms(ctx, g, rest, stdout)
	case "decommission":
		return runDecommission(ctx, g, rest, stdin, stdout, stderr)
	case "acl":
		return runACL(g, rest, stdout)
	}
	if _, ok := commandSpecs[name]; ok {
		return runCommand(ctx, g, name, rest, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", name)
}

// parseRoom checks a ROOM argument.
func parseRoom(s string) (string, error) {
	if !contract.ValidRoom(s) {
		return "", usagef("room id %q: want 1 to 64 characters of [a-z0-9_-], starting with a letter or digit", s)
	}
	return s, nil
}

// newFlags returns a flag set for command name with the global flags.
func newFlags(name string, g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	return fs
}

// parseArgs parses a command's flags and positional arguments. help is
// true when -h was given: the usage was printed and the command stops.
func parseArgs(name string, fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, help bool, err error) {
	pos, err = parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil, true, nil
	}
	if err != nil {
		return nil, false, usagef("%s: %v", name, err)
	}
	return pos, false, nil
}
