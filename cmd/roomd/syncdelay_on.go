//go:build syncdelay

package main

import (
	"fmt"
	"log/slog"

	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// syncDelayVariable injects sync latency into a roomd built with
// -tags syncdelay: every fdatasync of its journal (and every directory
// sync) first waits as journal.ParseSyncDelay reads the value ("300ms",
// "sdcard"). A card that is slow or stalls, seen by the real process.
// Shipped builds have no such variable.
const syncDelayVariable = "ROOMD_SYNC_DELAY"

func journalFS(getenv func(string) string, log *slog.Logger) (journal.FS, error) {
	s := getenv(syncDelayVariable)
	if s == "" {
		return nil, nil
	}
	sd, err := journal.ParseSyncDelay(s, uint64(wallclock.Now().UnixNano()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", syncDelayVariable, err)
	}
	log.Warn("SYNC LATENCY INJECTED: every sync of the journal waits first (a test build)", "variable", syncDelayVariable, "delay", s)
	return journal.DelayFS{FS: journal.OS{}, Delay: sd.Next}, nil
}
