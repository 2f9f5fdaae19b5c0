package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultEvery is how often a Textfile is written when its Every is 0: a
// quarter of node_exporter's usual 60 s scrape interval of a Pi, and
// often enough for an alert on a room whose file stops changing.
const DefaultEvery = 15 * time.Second

// Textfile writes what Gatherer gathers to Path, in Prometheus's text
// format, at once and then every Every, until its context ends. Each
// write goes to a temporary file in Path's directory and is renamed over
// Path, so node_exporter never reads half a file. Path must end in .prom
// (node_exporter reads nothing else).
type Textfile struct {
	Path     string
	Every    time.Duration
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// Check reports what is wrong with the path, before Run: it must end in
// .prom and its directory must exist.
func (t Textfile) Check() error {
	if !strings.HasSuffix(t.Path, ".prom") {
		return fmt.Errorf("metrics file %q: must end in .prom (node_exporter's textfile collector reads nothing else)", t.Path)
	}
	fi, err := os.Stat(filepath.Dir(t.Path))
	if err != nil {
		return fmt.Errorf("metrics file %q: %w", t.Path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("metrics file %q: %s is not a directory", t.Path, filepath.Dir(t.Path))
	}
	return nil
}

// Write writes the file once.
func (t Textfile) Write() error {
	if err := prometheus.WriteToTextfile(t.Path, t.Gatherer); err != nil {
		return fmt.Errorf("write metrics file %s: %w", t.Path, err)
	}
	return nil
}

// Run writes the file at once and then every Every until ctx ends. A
// failed write is logged (once until a write succeeds again) and tried
// again at the next turn: metrics never stop the program.
func (t Textfile) Run(ctx context.Context) {
	every := t.Every
	if every <= 0 {
		every = DefaultEvery
	}
	log := t.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	failing := false
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := t.Write(); err != nil && !failing {
			log.Warn("metrics not written; trying again", "err", err)
			failing = true
		} else if err == nil && failing {
			log.Info("metrics written again", "file", t.Path)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ResidentMemory returns the process's resident set size in bytes, from
// /proc/self/statm.
func ResidentMemory() (uint64, error) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("resident memory: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0, errors.New("resident memory: /proc/self/statm has fewer than 2 fields")
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resident memory: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
}
