package commission

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomd/roomd/controller"
)

// Report is what a function test leaves for the installer's records and
// an inspector: the room's record of it, plus each line's name in the
// config and what was seen. At is on the room's time axis, as recorded.
type Report struct {
	Room    string
	At      time.Time
	By      string
	Mode    controller.TestMode
	Version string // roomd's version
	Backend string // gpio, or sim for a simulated room
	Passed  bool
	Lines   []LineReport
	// Sync is the card's measured sync latency (journal.ProbeSync), nil
	// when it was not measured.
	Sync *SyncReport
}

// SyncReport is the state directory's disk as the journal sees it: the
// p50 and p99 of N write+fdatasync rounds, and the p99 above which the
// running room raises a warning (daemon.SyncP99Limit).
type SyncReport struct {
	Disk     string
	N        int
	P50, P99 time.Duration
	Max      time.Duration
	Limit    time.Duration
}

// reportJSON is the JSON form of a Report.
type reportJSON struct {
	Room    string     `json:"room"`
	At      string     `json:"at"`
	By      string     `json:"by"`
	Mode    string     `json:"mode"`
	Roomd   string     `json:"roomd"`
	Backend string     `json:"backend"`
	Passed  bool       `json:"passed"`
	Lines   []lineJSON `json:"lines"`
	Sync    *syncJSON  `json:"sync,omitempty"`
}

type syncJSON struct {
	Disk    string  `json:"disk"`
	N       int     `json:"n"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	MaxMS   float64 `json:"max_ms"`
	LimitMS float64 `json:"limit_ms"`
}

type lineJSON struct {
	Input  string `json:"input,omitempty"`
	Point  string `json:"point,omitempty"`
	Sensor int    `json:"sensor,omitempty"`
	Output string `json:"output,omitempty"`
	Line   string `json:"line"`
	Result string `json:"result"`
	Fault  string `json:"fault,omitempty"`
	Seen   string `json:"seen"`
	// Baseline is a supervised loop's ohms at rest and acted on.
	Baseline *baselineJSON `json:"baseline,omitempty"`
}

type baselineJSON struct {
	RestOhms  float64 `json:"rest_ohms"`
	ActedOhms float64 `json:"acted_ohms"`
}

// JSON returns the report as JSON: room, at (RFC 3339, UTC, milliseconds),
// by, mode, roomd, backend, passed, and lines, each with input (and point
// or sensor) or output, the config's line, result (passed or failed),
// fault and what was seen.
func (r Report) JSON() []byte {
	out := reportJSON{Room: r.Room, At: r.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), By: r.By, Mode: r.Mode.String(),
		Roomd: r.Version, Backend: r.Backend, Passed: r.Passed, Lines: make([]lineJSON, 0, len(r.Lines))}
	if s := r.Sync; s != nil {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		out.Sync = &syncJSON{Disk: s.Disk, N: s.N, P50MS: ms(s.P50), P99MS: ms(s.P99), MaxMS: ms(s.Max), LimitMS: ms(s.Limit)}
	}
	for _, l := range r.Lines {
		lj := lineJSON{Point: l.Point, Sensor: l.Sensor, Line: l.Line, Result: "passed", Fault: string(l.Fault), Seen: l.Seen}
		if l.Input != 0 {
			lj.Input = l.Input.String()
		}
		if l.Output != 0 {
			lj.Output = l.Output.String()
		}
		if !l.Passed {
			lj.Result = "failed"
		}
		if b := l.Baseline; b != nil {
			lj.Baseline = &baselineJSON{RestOhms: math.Round(b.Rest), ActedOhms: math.Round(b.Acted)}
		}
		out.Lines = append(out.Lines, lj)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("commission: encode report: %v", err)) // strings, ints and bools only
	}
	return append(b, '\n')
}

// Text returns the report for a person to read.
func (r Report) Text() []byte {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "roomd function test (%s): %s\n\n", r.Mode, verdict)
	fmt.Fprintf(&b, "room:     %s\n", r.Room)
	fmt.Fprintf(&b, "at:       %s (the room's clock)\n", r.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "by:       %s\n", r.By)
	fmt.Fprintf(&b, "roomd:    %s (%s backend)\n", r.Version, r.Backend)
	if s := r.Sync; s != nil {
		verdict := "fine"
		if s.P99 > s.Limit {
			verdict = "TOO SLOW: replace the card (the room would raise journal_sync)"
		}
		fmt.Fprintf(&b, "card:     %s: sync p50 %s, p99 %s, longest %s over %d syncs (warning above p99 %s): %s\n",
			s.Disk, s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond), s.N, s.Limit, verdict)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tWIRED TO\tRESULT\tWHAT WAS SEEN")
	for _, l := range r.Lines {
		res := "passed"
		if !l.Passed {
			res = "FAILED: " + string(l.Fault)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Name(), l.Line, res, l.Seen)
	}
	_ = tw.Flush()
	if !r.Passed {
		b.WriteString("\nWhat each fault means and what to check: docs/wiring.md, section Commissioning.\n")
	}
	return []byte(b.String())
}

// WriteReport writes r to dir (made if missing) as two files named by its
// time, function-test-YYYYMMDDTHHMMSSZ.txt and .json (-2, -3... if taken),
// each synced, and returns their paths. On any error neither file is left.
func WriteReport(dir string, r Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("write the function test report: %w", err)
	}
	base := filepath.Join(dir, "function-test-"+r.At.UTC().Format("20060102T150405Z"))
	for n := 1; n < 100; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		paths := []string{name + ".txt", name + ".json"}
		err := writeNew(paths[0], r.Text())
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			if err = writeNew(paths[1], r.JSON()); err != nil {
				_ = os.Remove(paths[0])
			}
		}
		if err != nil {
			return nil, fmt.Errorf("write the function test report: %w", err)
		}
		if err := syncDir(dir); err != nil {
			_ = os.Remove(paths[0])
			_ = os.Remove(paths[1])
			return nil, fmt.Errorf("write the function test report: %w", err)
		}
		return paths, nil
	}
	return nil, fmt.Errorf("write the function test report: %s-*: 99 reports of the same second already", base)
}

// writeNew creates path (it must not exist), writes data and syncs it; on
// error it removes what it made.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
