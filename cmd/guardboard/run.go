package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/metrics"
	"github.com/roomd/roomd/mqttconn"
)

const usage = `usage:
  guardboard serve --accounts FILE --broker URL [flags]
                         serve the board; every flag may be given as an
                         environment variable instead, e.g. GUARDBOARD_BROKER
                         (guardboard serve -h lists the flags and variables)
  guardboard -demo [--broker URL] [--listen ADDR]
                         simulated rooms on an embedded broker and the board
                         watching them; with --broker, watch that broker's rooms
                         (roomd -demo --keep) instead
  guardboard accounts add|passwd|remove ID --accounts FILE
                         the password is read from standard input (one line)
  guardboard accounts list --accounts FILE
  guardboard version
`

// usageError is a command line guardboard cannot read; main exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (see guardboard help)" }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// run is guardboard's main.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return usagef("no subcommand")
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "demo", "-demo", "--demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "accounts":
		return runAccounts(rest, stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "guardboard", buildinfo.Version())
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown subcommand %q", cmd)
	}
}

// serveFlags are serve's flags.
type serveFlags struct {
	listen, accounts, title, logLevel            string
	broker, brokerUser, brokerPasswordFile, base string
	brokerCA, brokerCert, brokerKey              string
	tlsCert, tlsKey                              string
	simUser, simPasswordFile, stateFile          string
	rooms, stateDir, shifts                      string
	metricsTextfile                              string
	metricsEvery                                 time.Duration
	insecureHTTP                                 bool
}

// envPrefix begins the environment variable of every serve flag: the
// flag's name in capitals, '-' as '_' (--broker-password-file is
// GUARDBOARD_BROKER_PASSWORD_FILE). The Debian package's unit reads them
// from /etc/default/guardboard.
const envPrefix = "GUARDBOARD_"

// envName is the environment variable of the serve flag name.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

const serveUsage = `usage: guardboard serve --accounts FILE --broker URL [flags]

Every flag may be given instead by an environment variable: GUARDBOARD_ and
the flag's name in capitals, '-' as '_' (in brackets below). A flag on the
command line wins over its variable; an empty variable counts as unset. The
Debian package's unit reads them from /etc/default/guardboard.

`

// serveConfig is serve's settings and where each came from.
type serveConfig struct {
	serveFlags
	// onCommandLine and fromEnv hold the flags given on the command line
	// and those whose value came from the environment.
	onCommandLine, fromEnv map[string]bool
}

// name is a setting as the installer gave it, for errors: "--listen" or
// "GUARDBOARD_LISTEN", and both ways, "--listen/GUARDBOARD_LISTEN", for one
// not given at all.
func (c *serveConfig) name(flag string) string {
	switch {
	case c.fromEnv[flag]:
		return envName(flag)
	case c.onCommandLine[flag]:
		return "--" + flag
	}
	return "--" + flag + "/" + envName(flag)
}

// serveFlagSet defines serve's flags into f; each flag's usage names its
// variable.
func serveFlagSet(f *serveFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`address` of the board's web server; plain HTTP only on loopback unless --insecure-http")
	fs.StringVar(&f.accounts, "accounts", "", "the accounts `file` (guardboard accounts add makes it); required")
	fs.StringVar(&f.title, "title", "Visit rooms", "the site's `name` in the page's header")
	fs.StringVar(&f.logLevel, "log-level", "info", "`level`: debug, info, warn or error")
	fs.StringVar(&f.broker, "broker", "", "broker `URL`: tcp://host:1883, ssl://host:8883; required")
	fs.StringVar(&f.brokerUser, "broker-user", board.DefaultUsername, "the board's broker `identity`")
	fs.StringVar(&f.brokerPasswordFile, "broker-password-file", "", "`file` holding the broker password (never sent to a browser)")
	fs.StringVar(&f.base, "base", contract.DefaultBase, "topic base")
	fs.StringVar(&f.brokerCA, "broker-ca", "", "CA `file` of the broker's certificate")
	fs.StringVar(&f.brokerCert, "broker-cert", "", "client certificate `file` for the broker")
	fs.StringVar(&f.brokerKey, "broker-key", "", "client key `file` for the broker")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate `file`: serve the board over HTTPS (with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "key `file` of --tls-cert")
	fs.StringVar(&f.simUser, "sim-driver-user", "", "broker `identity` the tester panel publishes sim/set as (test benches only; no production ACL grants it)")
	fs.StringVar(&f.simPasswordFile, "sim-driver-password-file", "", "`file` holding the sim driver's broker password")
	fs.StringVar(&f.stateFile, "state-file", "", "`file` keeping where the board stands in every room's records, so that a restarted board has the rooms replay what the broker did not keep for it (e.g. /var/lib/guardboard/marks.json)")
	fs.StringVar(&f.rooms, "rooms", "room-*", "the site's rooms: a `list` of ids or patterns with * and ?, separated by commas (room-1,room-2 or room-*); any other id on the broker is never shown as a room nor rings")
	fs.StringVar(&f.stateDir, "state-dir", "", "`directory` where the board keeps its response-time records and each operator's language (e.g. /var/lib/guardboard); without it they live in memory")
	fs.StringVar(&f.shifts, "shifts", "06:00,14:00,22:00", "the local `times` at which the site's shifts start, for the response-time records")
	fs.StringVar(&f.metricsTextfile, "metrics-textfile", "", "`file` ending in .prom that the board writes its Prometheus metrics to, for node_exporter's textfile collector (docs/metrics.md); empty: no metrics")
	fs.DurationVar(&f.metricsEvery, "metrics-every", metrics.DefaultEvery, "how often the metrics file is written")
	fs.BoolVar(&f.insecureHTTP, "insecure-http", false, "allow plain HTTP on an address other than loopback (passwords travel in clear)")
	fs.VisitAll(func(fl *flag.Flag) { fl.Usage += " [$" + envName(fl.Name) + "]" })
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parseServe reads serve's flags, then the GUARDBOARD_* variable of every
// flag not on the command line, and checks what can be checked before
// anything is opened. Every error names the flag or the variable.
func parseServe(args []string, getenv func(string) string, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{onCommandLine: map[string]bool{}, fromEnv: map[string]bool{}}
	fs := serveFlagSet(&c.serveFlags, stderr)
	f := &c.serveFlags
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("serve: %v", err)
	}
	if fs.NArg() != 0 {
		return nil, usagef("serve takes no arguments besides flags, got %q", fs.Args())
	}
	fs.Visit(func(fl *flag.Flag) { c.onCommandLine[fl.Name] = true })
	var bad []error
	fs.VisitAll(func(fl *flag.Flag) {
		v := getenv(envName(fl.Name))
		if c.onCommandLine[fl.Name] || v == "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			// Only the boolean flag's Set can fail.
			bad = append(bad, usagef("serve: %s=%q: want true or false (or 1 or 0)", envName(fl.Name), v))
			return
		}
		c.fromEnv[fl.Name] = true
	})
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}

	for _, req := range []struct{ flag, value, what string }{
		{"accounts", f.accounts, "FILE"}, {"broker", f.broker, "URL"},
	} {
		if req.value == "" {
			fs.Usage()
			return nil, usagef("serve needs --%s %s (or %s in the environment)", req.flag, req.what, envName(req.flag))
		}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, usagef("serve: %s and %s go together", c.name("tls-cert"), c.name("tls-key"))
	}
	if (f.brokerCert == "") != (f.brokerKey == "") {
		return nil, usagef("serve: %s and %s go together", c.name("broker-cert"), c.name("broker-key"))
	}
	if f.simPasswordFile != "" && f.simUser == "" {
		return nil, usagef("serve: %s needs %s", c.name("sim-driver-password-file"), c.name("sim-driver-user"))
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return nil, usagef("serve: %s %q: %v", c.name("log-level"), f.logLevel, err)
	}
	if err := mqttconn.CheckBrokerURL(f.broker); err != nil {
		return nil, usagef("serve: %s: %v", c.name("broker"), err)
	}
	if err := contract.ValidateBase(f.base); err != nil {
		return nil, usagef("serve: %s: %v", c.name("base"), err)
	}
	if !controller.ValidOperatorID(f.brokerUser) {
		return nil, usagef("serve: %s %q: want 1 to 64 of A-Z a-z 0-9 . _ : -, not on_site (it names the board in its own replay requests)", c.name("broker-user"), f.brokerUser)
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return nil, usagef("serve: %s %q: want host:port", c.name("listen"), f.listen)
	}
	if _, err := board.ParseRooms(f.rooms); err != nil {
		return nil, usagef("serve: %s: %v", c.name("rooms"), err)
	}
	if _, err := board.ParseShifts(f.shifts); err != nil {
		return nil, usagef("serve: %s: %v", c.name("shifts"), err)
	}
	if f.metricsTextfile != "" && (!strings.HasPrefix(f.metricsTextfile, "/") || !strings.HasSuffix(f.metricsTextfile, ".prom")) {
		return nil, usagef("serve: %s %q: want an absolute path ending in .prom (node_exporter's textfile collector reads nothing else)", c.name("metrics-textfile"), f.metricsTextfile)
	}
	if f.metricsEvery < 5*time.Second || f.metricsEvery > 5*time.Minute {
		return nil, usagef("serve: %s %s: want between 5s and 5m", c.name("metrics-every"), f.metricsEvery)
	}
	return c, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseServe(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	f := c.serveFlags
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return usagef("serve: %s %q: %v", c.name("log-level"), f.logLevel, err)
	}
	accounts, err := board.OpenAccounts(f.accounts)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name("accounts"), err)
	}
	if ids, _ := (board.AccountsFile{Path: f.accounts}).List(); len(ids) == 0 {
		return fmt.Errorf("accounts file %s (%s) has no account: add one with guardboard accounts add ID --accounts %s", f.accounts, c.name("accounts"), f.accounts)
	}
	rooms, _ := board.ParseRooms(f.rooms)    // checked by parseServe
	shifts, _ := board.ParseShifts(f.shifts) // checked by parseServe
	records, err := board.OpenRecords(board.RecordsOptions{Dir: f.stateDir, Shifts: shifts})
	if err != nil {
		return fmt.Errorf("%s: %w", c.name("state-dir"), err)
	}
	defer records.Close()
	if records.Skipped > 0 {
		log.Error("response-time records: unreadable lines skipped", "dir", f.stateDir, "lines", records.Skipped)
	}
	prefs, err := board.OpenPrefs(f.stateDir)
	if err != nil {
		log.Error("operators' preferences", "err", err)
	}
	o := board.Options{Broker: f.broker, Username: f.brokerUser, Base: f.base, SimUsername: f.simUser, Logger: log,
		StateFile: f.stateFile, Rooms: rooms, Records: records}
	if f.brokerPasswordFile != "" {
		if o.Password, err = mqttconn.ReadPasswordFile(f.brokerPasswordFile); err != nil {
			return fmt.Errorf("broker: %s: %w", c.name("broker-password-file"), err)
		}
	}
	if f.simPasswordFile != "" {
		if o.SimPassword, err = mqttconn.ReadPasswordFile(f.simPasswordFile); err != nil {
			return fmt.Errorf("sim driver: %s: %w", c.name("sim-driver-password-file"), err)
		}
	}
	if f.brokerCA != "" {
		if _, err := (mqttconn.TLSFiles{CAFile: f.brokerCA}).Config(); err != nil {
			return fmt.Errorf("broker tls: %s: %w", c.name("broker-ca"), err)
		}
	}
	if files := (mqttconn.TLSFiles{CAFile: f.brokerCA, CertFile: f.brokerCert, KeyFile: f.brokerKey}); !files.Empty() {
		if o.TLS, err = files.Config(); err != nil {
			return fmt.Errorf("broker tls: %s, %s: %w", c.name("broker-cert"), c.name("broker-key"), err)
		}
	}
	return serve(ctx, serveArgs{board: o, accounts: accounts, listen: f.listen, title: f.title,
		tlsCert: f.tlsCert, tlsKey: f.tlsKey, insecureHTTP: f.insecureHTTP, log: log, out: stdout,
		names: c.name, prefs: prefs, metricsTextfile: f.metricsTextfile, metricsEvery: f.metricsEvery})
}

// parseLevel reads a log level.
func parseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return l, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

type serveArgs struct {
	board           board.Options
	accounts        *board.Accounts
	listen, title   string
	tlsCert, tlsKey string
	insecureHTTP    bool
	log             *slog.Logger
	out             io.Writer
	// ready, if set, receives the board's URL once it listens.
	ready func(url string)
	// names, if set, names a serve flag as the installer gave it (the
	// flag or its environment variable), for errors.
	names func(flag string) string
	// prefs keeps the operators' languages (nil: in memory).
	prefs *board.Prefs
	// links, if set, cuts and restores simulated rooms' links (the demo).
	links board.LinkCutter
	// metricsTextfile, if set, is where the board's metrics go, every
	// metricsEvery.
	metricsTextfile string
	metricsEvery    time.Duration
}

func (a serveArgs) name(flag string) string {
	if a.names == nil {
		return "--" + flag
	}
	return a.names(flag)
}

// serve runs the board and its web server until ctx ends.
func serve(ctx context.Context, a serveArgs) error {
	useTLS := a.tlsCert != ""
	host, _, err := net.SplitHostPort(a.listen)
	if err != nil {
		return usagef("%s %q: want host:port", a.name("listen"), a.listen)
	}
	if !useTLS && !a.insecureHTTP && !isLoopback(host) {
		return usagef("%s %s is not loopback: serve the board over HTTPS (%s, %s), or accept passwords in clear with %s",
			a.name("listen"), a.listen, a.name("tls-cert"), a.name("tls-key"), a.name("insecure-http"))
	}
	var tlsConf *tls.Config
	if useTLS {
		cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
		if err != nil {
			return fmt.Errorf("board tls: %s, %s: %w", a.name("tls-cert"), a.name("tls-key"), err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", a.listen)
	if err != nil {
		return fmt.Errorf("listen (%s): %w", a.name("listen"), err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	b := board.New(a.board)
	srv := &http.Server{Handler: board.NewServer(board.ServerOptions{Board: b, Accounts: a.accounts, TLS: useTLS,
		Logger: a.log, Title: a.title, Prefs: a.prefs, Links: a.links}), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String() + "/"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	boardDone := make(chan error, 1)
	go func() { boardDone <- b.Run(ctx) }()
	if a.metricsTextfile != "" {
		tf := metrics.Textfile{Path: a.metricsTextfile, Every: a.metricsEvery, Gatherer: b.Metrics(nil), Logger: a.log}
		if err := tf.Check(); err != nil {
			a.log.Error("metrics off", "flag", a.name("metrics-textfile"), "err", err) // metrics never stop the board
		} else {
			go tf.Run(ctx)
		}
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	a.log.Info("guard station board", "url", url, "broker", a.board.Broker, "username", a.board.Username)
	if a.ready != nil {
		a.ready(url)
	}
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		cancel()
		<-boardDone
		return fmt.Errorf("web server: %w", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	cancel()
	<-boardDone // ends the live streams first, so Shutdown does not wait for them
	_ = srv.Shutdown(sctx)
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runAccounts(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("accounts: want add, passwd, remove or list")
	}
	verb, rest := args[0], args[1:]
	fs := flag.NewFlagSet("accounts "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("accounts", "", "the accounts `file`")
	// Flags may come before or after the operator id.
	var ids []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usagef("accounts %s: %v", verb, err)
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *file == "" {
		return usagef("accounts %s needs --accounts FILE", verb)
	}
	af := board.AccountsFile{Path: *file}
	switch verb {
	case "list":
		if len(ids) != 0 {
			return usagef("accounts list takes no operator id")
		}
		list, err := af.List()
		if err != nil {
			return err
		}
		for _, id := range list {
			fmt.Fprintln(stdout, id)
		}
		return nil
	case "add", "passwd", "remove":
	default:
		return usagef("accounts: unknown verb %q: want add, passwd, remove or list", verb)
	}
	if len(ids) != 1 {
		return usagef("accounts %s takes one operator id (an opaque id such as guard-7, never a name)", verb)
	}
	id := ids[0]
	if verb == "remove" {
		if err := af.Remove(id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s; its sessions end at their next request\n", id)
		return nil
	}
	fmt.Fprintf(stderr, "password for %s (one line, at least %d characters): ", id, board.MinPasswordLength)
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password from standard input: %w", err)
	}
	fmt.Fprintln(stderr)
	pw := strings.TrimRight(line, "\r\n")
	if verb == "add" {
		err = af.Add(id, pw)
	} else {
		err = af.Passwd(id, pw)
	}
	if err != nil {
		return err
	}
	if verb == "passwd" {
		fmt.Fprintf(stdout, "password changed: %s in %s; its sessions on the board end at their next request\n", id, *file)
		return nil
	}
	fmt.Fprintf(stdout, "added: %s in %s\n", id, *file)
	return nil
}
