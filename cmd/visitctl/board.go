package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
)

// board is what watch knows of every room under one topic base. It is fed
// by apply and drawn by render; both are pure (the caller passes the time).
type board struct {
	base string
	// user is visitctl's broker identity ("" anonymous).
	user string
	// heartbeat is the rooms' state heartbeat: a room with no state for
	// more than two heartbeats is shown STALE.
	heartbeat time.Duration
	// connected is false while the connection to the broker is down.
	connected bool
	// unreadable counts messages that could not be decoded.
	unreadable int
	rooms      map[string]*roomView
}

// roomView is one room on the board.
type roomView struct {
	availability string                 // "online", "offline" or "" (not seen)
	state        *contract.StateMessage // latest state, nil if none seen
	seen         time.Time              // when the latest state was known to be current
	// events are alert events newer than state (seq above state.Seq), in
	// the order received; they are folded into the state's alert list.
	events []contract.EventMessage
	// critical holds the active, unacknowledged critical alerts already
	// announced with a bell.
	critical map[string]bool
}

// inbound is a message as watch receives it.
type inbound struct {
	topic    string
	payload  []byte
	retained bool
}

func newBoard(base string, heartbeat time.Duration) *board {
	return &board{base: base, heartbeat: heartbeat, connected: true, rooms: map[string]*roomView{}}
}

func (b *board) room(name string) *roomView {
	r, ok := b.rooms[name]
	if !ok {
		r = &roomView{critical: map[string]bool{}}
		b.rooms[name] = r
	}
	return r
}

// apply folds one message received at now into the board. It returns true
// when the message brought a new critical alert (raised critical or
// escalated to critical, not acknowledged) that deserves a bell. Messages on
// other topics, or with a room id that is not valid, are ignored.
func (b *board) apply(m inbound, now time.Time) (bell bool) {
	rest, ok := strings.CutPrefix(m.topic, b.base+"/")
	if !ok {
		return false
	}
	name, kind, ok := strings.Cut(rest, "/")
	if !ok || !contract.ValidRoom(name) {
		return false
	}
	switch kind {
	case "availability":
		b.room(name).availability = strings.TrimSpace(string(m.payload))
		return false
	case "state":
		var s contract.StateMessage
		if err := json.Unmarshal(m.payload, &s); err != nil {
			b.unreadable++
			return false
		}
		r := b.room(name)
		if r.state != nil && s.Seq < r.state.Seq {
			return false // an older state delivered late
		}
		r.state = &s
		r.seen = now
		if m.retained && !s.At.IsZero() && s.At.Before(now) {
			// A retained state may be old: judge it by its own time.
			r.seen = s.At.Time
		}
		kept := r.events[:0]
		for _, e := range r.events {
			if e.Seq > s.Seq {
				kept = append(kept, e)
			}
		}
		r.events = kept
	case "alerts":
		var e contract.EventMessage
		if err := json.Unmarshal(m.payload, &e); err != nil || e.Alert == nil {
			b.unreadable++
			return false
		}
		r := b.room(name)
		if r.state != nil && e.Seq <= r.state.Seq {
			return false // already in the state
		}
		r.events = append(r.events, e)
	default:
		return false
	}
	r := b.rooms[name]
	critical := map[string]bool{}
	for _, a := range r.alerts() {
		if a.Severity == "critical" && !a.Acked && a.ClearedAt.IsZero() {
			critical[a.ID] = true
			if !r.critical[a.ID] {
				bell = true
			}
		}
	}
	r.critical = critical
	return bell
}

// alerts returns the room's active alerts: the state's, updated by the
// alert events that came after it, sorted by severity (critical first),
// then by the time raised.
func (r *roomView) alerts() []contract.AlertMessage {
	return roomclient.ActiveAlerts(r.state, r.events)
}

// sortedAlerts returns a copy of as, critical first, then oldest first;
// never nil, so that JSON shows an empty list as [].
func sortedAlerts(as []contract.AlertMessage) []contract.AlertMessage {
	out := make([]contract.AlertMessage, len(as))
	copy(out, as)
	sort.SliceStable(out, func(i, j int) bool {
		return roomclient.AlertBefore(out[i].Severity, out[i].RaisedAt.Time, out[j].Severity, out[j].RaisedAt.Time)
	})
	return out
}

// stale reports whether the room sent no state for more than two heartbeats.
func (b *board) stale(r *roomView, now time.Time) bool {
	return r.state != nil && b.heartbeat > 0 && now.Sub(r.seen) > 2*b.heartbeat
}

// describeAlert is "panic-3 critical 2m03s x3 acked": the alert id (the
// one to acknowledge; roomd's ids start with the kind, others are preceded
// by it), severity, age, announcements (when more than one), acked/cleared.
func describeAlert(a contract.AlertMessage, now time.Time) string {
	var sb strings.Builder
	if !strings.HasPrefix(a.ID, a.Kind) {
		sb.WriteString(a.Kind + " ")
	}
	sb.WriteString(a.ID)
	if a.Input != "" {
		sb.WriteString("(" + a.Input + ")")
	} else if a.Source != "" {
		sb.WriteString("(" + a.Source + ")")
	}
	sb.WriteString(" " + a.Severity)
	if !a.RaisedAt.IsZero() {
		sb.WriteString(" " + age(now.Sub(a.RaisedAt.Time)))
	}
	if a.Announcements > 1 {
		fmt.Fprintf(&sb, " x%d", a.Announcements)
	}
	if a.Acked {
		sb.WriteString(" acked")
	}
	if !a.ClearedAt.IsZero() {
		sb.WriteString(" cleared")
	}
	return sb.String()
}

// Layouts of the times visitctl shows people: always with their zone
// (the zone's abbreviation, or its offset where it has none).
const (
	dateTimeZone = "2006-01-02 15:04:05 MST"
	timeZone     = "15:04:05 MST"
)

// age is a short duration: "45s", "2m03s", "1h02m".
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
}

// countdown is the time left until ends as "1:29:59 left" (rounded up), or
// the time past it as "0:05:12 over".
func countdown(ends, now time.Time) string {
	d := ends.Sub(now)
	if d > 0 {
		return clock((d+time.Second-1)/time.Second*time.Second) + " left"
	}
	return clock(-d) + " over"
}

// clock is "H:MM:SS" of d, truncated to the second.
func clock(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
}

// render draws the board at now, one line per room sorted by room id, each
// cut to width runes (0: no limit). It is a pure function of its arguments.
func render(b *board, now time.Time, width int) string {
	var lines []string
	head := fmt.Sprintf("%s  %s  %d rooms", b.base, now.Format(dateTimeZone), len(b.rooms))
	if !b.connected {
		head += "  BROKER CONNECTION LOST - reconnecting"
	}
	if b.unreadable > 0 {
		head += fmt.Sprintf("  %d unreadable messages", b.unreadable)
	}
	lines = append(lines, head)

	names := make([]string, 0, len(b.rooms))
	roomW := len("ROOM")
	for n := range b.rooms {
		names = append(names, n)
		roomW = max(roomW, len(n))
	}
	sort.Strings(names)
	format := fmt.Sprintf("%%-%ds  %%-7s  %%-14s  %%-14s  %%-7s  %%-8s  %%-13s  %%s", roomW)
	lines = append(lines, strings.TrimRight(fmt.Sprintf(format, "ROOM", "LINK", "PHASE", "VISIT", "DOOR", "BOLT", "LAST STATE", "ALERTS"), " "))
	if len(names) == 0 {
		lines = append(lines, nothingRead(b.base, b.user, "{availability,state,alerts}"))
	}
	for _, n := range names {
		r := b.rooms[n]
		link, phase, visit, door, lock, seen, alerts := "?", "-", "-", "-", "-", "never", "-"
		switch r.availability {
		case "online":
			link = "online"
		case "offline":
			link = "OFFLINE"
		case "":
		default:
			link = r.availability
		}
		if s := r.state; s != nil {
			phase, door, lock = s.Phase, s.Door, s.Lock
			if s.Phase == "overtime" || s.Phase == "out_of_service" {
				phase = strings.ToUpper(s.Phase)
			}
			if s.Visit != nil {
				visit = countdown(s.Visit.EndsAt.Time, now)
			}
			seen = age(now.Sub(r.seen)) + " ago"
			if b.stale(r, now) {
				seen = "STALE " + age(now.Sub(r.seen))
			}
		}
		if as := r.alerts(); len(as) > 0 {
			parts := make([]string, len(as))
			for i, a := range as {
				parts[i] = describeAlert(a, now)
			}
			alerts = strings.Join(parts, ", ")
		}
		lines = append(lines, strings.TrimRight(fmt.Sprintf(format, n, link, phase, visit, door, lock, seen, alerts), " "))
	}
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(cut(l, width))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// cut shortens s to width runes (0: no limit).
func cut(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	return string([]rune(s)[:width])
}

// roomSnapshot is one room in watch's JSON output.
type roomSnapshot struct {
	Room         string                  `json:"room"`
	Availability string                  `json:"availability"`
	Stale        bool                    `json:"stale"`
	State        *contract.StateMessage  `json:"state"`
	Alerts       []contract.AlertMessage `json:"alerts"`
}

// snapshot returns the board as JSON-ready rooms sorted by id.
func (b *board) snapshot(now time.Time) []roomSnapshot {
	out := make([]roomSnapshot, 0, len(b.rooms))
	for n, r := range b.rooms {
		out = append(out, roomSnapshot{Room: n, Availability: r.availability, Stale: b.stale(r, now), State: r.state, Alerts: r.alerts()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out
}
