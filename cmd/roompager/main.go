// Command roompager pages the site's paging system (DECT handsets,
// pagers) over ESPA 4.4.4 with the rooms' alerts. See run.go and
// docs/pager.md.
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
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "roompager:", err)
		os.Exit(exitCode(err))
	}
}
