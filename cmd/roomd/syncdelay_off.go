//go:build !syncdelay

package main

import (
	"log/slog"

	"github.com/roomd/roomd/journal"
)

// journalFS is the journal's file system: the default one. A build with
// -tags syncdelay can inject sync latency instead (syncdelay_on.go).
func journalFS(func(string) string, *slog.Logger) (journal.FS, error) { return nil, nil }
