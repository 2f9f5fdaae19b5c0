package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/roomd/roomd/buildinfo"
	"github.com/roomd/roomd/configs"
)

const usage = `usage:
  roomd run --config FILE [--log-format text|json]
                            run the room until SIGINT or SIGTERM
  roomd check-config FILE   print the effective config, or every problem in it
  roomd check-config --connect FILE
                            with roomd stopped: log in to the broker as the room, over
                            TLS, and check what its ACL lets it do; each failure with its fix
  roomd commission --config FILE --by ID [--light] [--report DIR] [--timeout 1m]
                            the guided function test of every input and output,
                            with roomd stopped; the result is recorded and reported
  roomd -demo [-demo-keep]  a scripted two-hour visit on a simulated room and an
                            embedded broker, in about 20 seconds (also: roomd demo)
  roomd scenario FILE [--speed N]
                            replay a scenario file (sim/scenarios) visibly
  roomd version             print roomd's version (also: roomd --version)
  roomd help                show this help
`

// usageError is a command line roomd cannot read; main exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (see roomd help)" }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// run is roomd's main: args as os.Args, getenv as os.Getenv. It returns
// when the command is done or ctx is cancelled (SIGINT, SIGTERM).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return usagef("no subcommand")
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "check-config":
		return checkConfig(ctx, configs.Load, rest, stdout, stderr)
	case "run":
		return runDaemon(ctx, rest, getenv, stdout, stderr)
	case "commission":
		return runCommission(ctx, rest, os.Stdin, stdout, stderr)
	case "demo", "-demo", "--demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "scenario":
		return runScenario(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "roomd", buildinfo.Version())
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown subcommand %q", cmd)
	}
}

// checkConfig loads the file named in args with load and prints the
// effective config to stdout, or every problem to stderr, one per line. It
// returns when ctx ends even if load is stuck (a file on a hung network
// mount): SIGINT and SIGTERM always end it.
func checkConfig(ctx context.Context, load func(string) (*configs.Config, error), args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	connect := fs.Bool("connect", false, "also log in to the broker as the room and check what it may do (roomd stopped)")
	fs.Usage = func() { fmt.Fprint(stderr, "usage: roomd check-config [--connect] FILE\n") }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usagef("check-config: %v", err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("check-config takes one FILE, got %d arguments", fs.NArg())
	}
	file := fs.Arg(0)
	type loaded struct {
		cfg *configs.Config
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		cfg, err := load(file)
		done <- loaded{cfg, err}
	}()
	var cfg *configs.Config
	select {
	case <-ctx.Done():
		return fmt.Errorf("check-config %s: stopped before the file was read: %w", file, context.Cause(ctx))
	case l := <-done:
		cfg = l.cfg
		if err := l.err; err != nil {
			if !errors.As(err, new(*configs.FieldError)) {
				return fmt.Errorf("check-config: %w", err) // unreadable file or YAML syntax
			}
			problems := unjoin(err)
			for _, p := range problems {
				fmt.Fprintln(stderr, p)
			}
			if len(problems) == 1 {
				return fmt.Errorf("check-config %s: 1 problem", file)
			}
			return fmt.Errorf("check-config %s: %d problems", file, len(problems))
		}
	}
	if *connect {
		return connectCheck(ctx, cfg, stdout)
	}
	out, err := cfg.YAML()
	if err != nil {
		return fmt.Errorf("check-config %s: %w", file, err)
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "%s: warning: %s\n", file, w)
	}
	_, err = stdout.Write(out)
	return err
}

// unjoin lists the errors joined in err (errors.Join), or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
