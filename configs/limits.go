package configs

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limit is the floor and the ceiling of one duration of the config. A
// duration outside them is refused by name, so that no accepted config can
// starve the room's loop (a repeat every nanosecond) or hide an alert
// behind a timer that never fires in time (a panic debounced for minutes).
type Limit struct {
	Key      string // as in the file: policy.repeat_every
	Min, Max time.Duration
	// Off: 0 is accepted too, and turns the feature off.
	Off bool
	// Why says what the floor protects.
	Why string
}

// DurationLimits lists every duration of the config with its floor and
// ceiling; docs/mqtt.md and roomd.example.yaml repeat them. Keys with a
// per-line value (debounce) apply to every line.
var DurationLimits = []Limit{
	{Key: "policy.max_duration", Min: time.Minute, Max: 7 * 24 * time.Hour, Why: "a visit longer than a week is not a visit"},
	{Key: "policy.warnings", Min: time.Second, Max: 7 * 24 * time.Hour, Why: "each warning is one step"},
	{Key: "policy.escalate_after", Min: time.Second, Max: 24 * time.Hour, Why: "escalation is a step of its own"},
	{Key: "policy.repeat_every", Min: time.Second, Max: time.Hour, Why: "an unacknowledged critical alert is announced again this often: below a second the loop does nothing else"},
	{Key: "policy.reannounce_after", Min: time.Second, Max: 24 * time.Hour, Why: "an acknowledged alert still active is announced again this often"},
	{Key: "policy.lock_grace", Min: 0, Max: time.Hour, Why: ""},
	{Key: "policy.vacancy_hold", Min: 0, Max: 24 * time.Hour, Why: ""},
	{Key: "policy.vacate_timeout", Min: time.Second, Max: 24 * time.Hour, Why: "a timer of the loop"},
	{Key: "policy.welfare_check_every", Min: time.Minute, Max: 24 * time.Hour, Off: true, Why: "a welfare check is a warning for the guards"},
	{Key: "policy.function_test_every", Min: time.Hour, Max: 366 * 24 * time.Hour, Off: true, Why: "a reminder, not a loop"},
	{Key: "device.reread_every", Min: 100 * time.Millisecond, Max: time.Minute, Why: "every input is read again this often"},
	{Key: "device.flap.window", Min: time.Second, Max: time.Hour, Why: "changes are counted over this window"},
	{Key: "device.blink_period", Min: 100 * time.Millisecond, Max: 10 * time.Second, Why: "an output toggles twice per period"},
	{Key: "device.inputs.debounce", Min: 0, Max: 5 * time.Second, Why: ""},
	{Key: "device.inputs.panic.debounce", Min: 0, Max: 500 * time.Millisecond, Why: "a press is reported only once it held this long: above half a second a panic would wait"},
	{Key: "mqtt.connect_timeout", Min: time.Second, Max: time.Minute, Why: "one connection attempt"},
	{Key: "mqtt.heartbeat", Min: time.Second, Max: time.Hour, Why: "the state is published again this often"},
	{Key: "journal.retention", Min: time.Hour, Max: 30 * 24 * time.Hour, Why: "replay and answers to repeated commands reach back this far"},
}

// limit returns the limit of key.
func limit(key string) (Limit, bool) {
	for _, l := range DurationLimits {
		if l.Key == key {
			return l, true
		}
	}
	return Limit{}, false
}

// check reports what is wrong with d under l, or "".
func (l Limit) check(d time.Duration) string {
	if l.Off && d == 0 {
		return ""
	}
	if d < l.Min || d > l.Max {
		s := fmt.Sprintf("must be between %s and %s", fmtDur(l.Min), fmtDur(l.Max))
		if l.Off {
			s += " (or 0s: off)"
		}
		s += fmt.Sprintf(", got %s", d)
		if l.Why != "" {
			s += ": " + l.Why
		}
		return s
	}
	return ""
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// bounded reports d at field when it is outside the limit of key.
func (r *reader) bounded(n *yaml.Node, field, key string, d time.Duration) {
	l, ok := limit(key)
	if !ok {
		panic("configs: no limit for " + key)
	}
	if msg := l.check(d); msg != "" {
		r.bad(n, field, "%s", msg)
	}
}

// Write rates behind the journal warnings (docs/performance.md, "Wear
// budget"): what a busy room writes per hour (a visit with its warnings,
// alerts, door changes and commands: 33,658 bytes per 2 h visit, measured),
// and one identity flooding commands at its rate limit (20 commands/s of
// about 1,500 bytes each).
const (
	BusyBytesPerHour  = 17 << 10
	FloodBytesPerSec  = 20 * 1500
	minFloodHeld      = 10 * time.Minute
	windowWarningNote = "replay and repeated commands then reach back less far than journal.retention (info window_s says how far)"
)

// JournalWarnings says when journal.max_bytes cannot hold journal.retention
// at the rate a busy room writes, or holds less than ten minutes of a
// command flood from one identity (roomd check-config prints them).
func (c *Config) JournalWarnings() []string {
	var out []string
	max := c.Journal.MaxBytes
	busy := time.Duration(float64(max) / float64(BusyBytesPerHour) * float64(time.Hour))
	if busy < c.Journal.Retention {
		out = append(out, fmt.Sprintf("journal.max_bytes %d holds about %s of a busy room's steps (%d bytes an hour), less than journal.retention %s: %s",
			max, busy.Round(time.Minute), BusyBytesPerHour, c.Journal.Retention, windowWarningNote))
	}
	flood := time.Duration(float64(max) / float64(FloodBytesPerSec) * float64(time.Second))
	if flood < minFloodHeld && flood < c.Journal.Retention {
		out = append(out, fmt.Sprintf("journal.max_bytes %d holds about %s of a command flood from one identity (%d bytes a second at its rate limit): under such a flood %s",
			max, flood.Round(time.Second), FloodBytesPerSec, windowWarningNote))
	}
	return out
}
