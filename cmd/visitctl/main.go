// Command visitctl starts, extends and ends visits, acknowledges alerts,
// drives the simulator and shows a live board of every room: see run.go.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "visitctl:", err)
	}
	os.Exit(exitCode(err))
}
