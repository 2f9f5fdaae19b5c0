package pager_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/pager"
)

// A transcript (testdata/*.txt) is a pager's rules, then what happens
// and what it pages, one line each:
//
//	lang it | notices on | grace 30s | repeat room-3 60s | max 24
//	route rooms=room-1,room-2 kinds=panic min=critical address=101,102
//	@0s raised room-3 panic-1 panic critical point=bed [acked]
//	@90s tick                      (the pager's own clock reaches 90s)
//	@95s reconcile room-3 panic-1:panic:critical:acked ...
//	=> 101 high "PANIC room-3 bed" (raised)
//
// After each @ line the runner takes every page the pager has queued, in
// the pager's order, and compares them with the => lines that follow.
// Times are offsets from a fixed epoch, so no transcript depends on today.
var epoch = time.Date(2031, 5, 6, 9, 0, 0, 0, time.UTC)

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

func runTranscript(t *testing.T, file string) {
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	rules := pager.Rules{Notices: false}
	repeats := map[string]time.Duration{}
	var p *pager.Pager
	var got []string // pages of the latest step not yet matched
	step := ""
	check := func(lineNo int) {
		if step != "" && len(got) > 0 {
			t.Errorf("%s:%d: after %q also paged:\n  %s", file, lineNo, step, strings.Join(got, "\n  "))
		}
		got = nil
	}
	lines := strings.Split(string(b), "\n")
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "=>"):
			want := strings.TrimSpace(strings.TrimPrefix(line, "=>"))
			if len(got) == 0 {
				t.Errorf("%s:%d: after %q want %s, paged nothing more", file, n, step, want)
				continue
			}
			if got[0] != want {
				t.Errorf("%s:%d: after %q\n  want %s\n  got  %s", file, n, step, want, got[0])
			}
			got = got[1:]
		case f[0] == "lang":
			rules.Language = pager.Language(f[1])
		case f[0] == "notices":
			rules.Notices = f[1] == "on"
		case f[0] == "grace":
			rules.RepeatGrace = dur(t, f[1])
		case f[0] == "max":
			fmt.Sscan(f[1], &rules.MaxMessage)
		case f[0] == "repeat":
			repeats[f[1]] = dur(t, f[2])
		case f[0] == "route":
			rules.Routes = append(rules.Routes, route(t, f[1:]))
		case strings.HasPrefix(f[0], "@"):
			check(n)
			if p == nil {
				p = pager.New(rules)
				for room, d := range repeats {
					p.SetRepeatEvery(room, d)
				}
			}
			at := epoch.Add(dur(t, f[0][1:]))
			step = line
			switch f[1] {
			case "tick":
				p.Tick(at)
			case "reconcile":
				var as []pager.Alert
				for _, s := range f[3:] {
					parts := strings.Split(s, ":")
					as = append(as, pager.Alert{Room: f[2], ID: parts[0], Kind: parts[1], Severity: sev(t, parts[2]),
						Acked: len(parts) > 3 && parts[3] == "acked", RaisedAt: at})
				}
				p.Reconcile(f[2], as, at)
			default:
				typ, ok := pager.ParseEventType(f[1])
				require.True(t, ok, "%s:%d: unknown step %q", file, n, f[1])
				a := pager.Alert{Room: f[2], ID: f[3], Kind: f[4], Severity: sev(t, f[5])}
				for _, kv := range f[6:] {
					k, v, _ := strings.Cut(kv, "=")
					switch k {
					case "point":
						a.Point = v
					case "input":
						a.Input = v
					case "output":
						a.Output = v
					case "source":
						a.Source = v
					case "raised":
						a.RaisedAt = epoch.Add(dur(t, v))
					default:
						t.Fatalf("%s:%d: unknown field %q", file, n, k)
					}
				}
				if a.RaisedAt.IsZero() {
					a.RaisedAt = at
				}
				p.Apply(pager.Event{Type: typ, At: at, Alert: a})
			}
			for {
				pg, ok := p.Next()
				if !ok {
					break
				}
				p.Sent(pg)
				got = append(got, fmt.Sprintf("%s %s %q (%s)", pg.Address, pg.Priority, pg.Message, pg.Reason))
			}
		default:
			t.Fatalf("%s:%d: cannot read %q", file, n, line)
		}
	}
	check(len(lines))
}

func dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	require.NoError(t, err)
	return d
}

func sev(t *testing.T, s string) pager.Severity {
	v, err := pager.ParseSeverity(s)
	require.NoError(t, err)
	return v
}

func route(t *testing.T, kvs []string) pager.Route {
	var r pager.Route
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "rooms":
			r.Rooms = strings.Split(v, ",")
		case "kinds":
			r.Kinds = strings.Split(v, ",")
		case "min":
			r.MinSeverity = sev(t, v)
		case "address":
			r.Addresses = strings.Split(v, ",")
		default:
			t.Fatalf("route: unknown %q", k)
		}
	}
	return r
}
