// Package pager decides what the site's paging system is asked to ring:
// which alerts, on which call addresses, with which priority and words,
// when again, and when no more. Pager is pure: no I/O, no clock (every
// method takes the time), so that its behaviour is tested with
// transcripts (testdata/*.txt). Gateway runs it against the rooms' records
// and an ESPA 4.4.4 line (package espa).
package pager

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/roomd/roomd/pager/espa"
)

// Severity of an alert, as the contract names it.
type Severity int

// The severities, least urgent first.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityCritical
)

var severityNames = map[Severity]string{SeverityInfo: "info", SeverityWarning: "warning", SeverityCritical: "critical"}

func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity reads info, warning or critical.
func ParseSeverity(s string) (Severity, error) {
	for v, n := range severityNames {
		if n == s {
			return v, nil
		}
	}
	return 0, fmt.Errorf("severity %q: want info, warning or critical", s)
}

// Alert is what the pager knows of an alert: only what a handset may show
// (never a name, nothing about the occupants).
type Alert struct {
	Room     string
	ID       string
	Kind     string
	Severity Severity
	Point    string // panic, sensor_fault of a panic point
	Input    string // sensor_fault
	Output   string // output_fault
	Source   string // system_fault
	RaisedAt time.Time
	Acked    bool
}

// EventType is the alert record an Event carries.
type EventType int

// The alert records of the contract that change what is paged.
const (
	Raised      EventType = iota + 1 // alert_raised
	Escalated                        // alert_escalated
	Repeated                         // alert_repeated
	Reannounced                      // alert_reannounced
	Acked                            // alert_acked
	Cleared                          // alert_cleared
)

var eventNames = map[EventType]string{Raised: "raised", Escalated: "escalated", Repeated: "repeated",
	Reannounced: "reannounced", Acked: "acked", Cleared: "cleared"}

func (e EventType) String() string {
	if n, ok := eventNames[e]; ok {
		return n
	}
	return fmt.Sprintf("event(%d)", int(e))
}

// ParseEventType reads raised, escalated, repeated, reannounced, acked or
// cleared.
func ParseEventType(s string) (EventType, bool) {
	for v, n := range eventNames {
		if n == s {
			return v, true
		}
	}
	return 0, false
}

// Event is one alert record of a room.
type Event struct {
	Type  EventType
	At    time.Time // when the room announced it
	Alert Alert
}

// Reason is why a page is sent.
type Reason int

// The reasons.
const (
	ReasonRaised      Reason = iota + 1 // a new alert
	ReasonEscalated                     // its severity rose
	ReasonRepeated                      // the room announced it again (alert_repeated)
	ReasonReannounced                   // acknowledged, still active, unacknowledged again
	ReasonOwnRepeat                     // no announcement came for repeat_every and a grace: the pager repeats it itself
	ReasonAcked                         // a notice: the alert was acknowledged
	ReasonCleared                       // a notice: the alert is over
)

var reasonNames = map[Reason]string{ReasonRaised: "raised", ReasonEscalated: "escalated", ReasonRepeated: "repeated",
	ReasonReannounced: "reannounced", ReasonOwnRepeat: "own_repeat", ReasonAcked: "acked", ReasonCleared: "cleared"}

func (r Reason) String() string { return reasonNames[r] }

// Route sends the alerts it matches to its call addresses: a handset, a
// pager, or a group of them, as the paging system numbers them. Empty
// Rooms or Kinds match every room or kind.
type Route struct {
	Rooms       []string
	Kinds       []string
	MinSeverity Severity
	Addresses   []string
}

func (r Route) matches(a Alert) bool {
	return (len(r.Rooms) == 0 || slices.Contains(r.Rooms, a.Room)) &&
		(len(r.Kinds) == 0 || slices.Contains(r.Kinds, a.Kind)) &&
		a.Severity >= r.MinSeverity
}

// Rules are what the pager pages.
type Rules struct {
	Routes   []Route
	Language Language
	// MaxMessage is the longest message (a handset's display).
	MaxMessage int
	// Notices: when a paged alert is acknowledged or clears, its addresses
	// get a short notice at normal priority. ESPA 4.4.4 cannot withdraw a
	// call a handset already shows; this is the nearest thing.
	Notices bool
	// RepeatEvery is the repeat interval of a room whose info has not
	// been seen (the contract's default policy: 1m).
	RepeatEvery time.Duration
	// RepeatGrace: an unacknowledged critical alert that the room did not
	// announce again within its repeat_every plus this is repeated by the
	// pager itself (the room or the broker may be down; the alert is not
	// over for that).
	RepeatGrace time.Duration
}

type key struct{ room, id string }

type tracked struct {
	alert     Alert
	addresses []string  // where it was paged
	announced time.Time // the latest announcement (room's or own)
}

// Page is one call for the paging system.
type Page struct {
	Room     string
	AlertID  string
	Address  string
	Priority espa.Priority
	Message  string
	Reason   Reason
	Severity Severity
	RaisedAt time.Time
	seq      uint64
}

// Call is the page as an ESPA call.
func (p Page) Call() espa.Call {
	return espa.Call{Address: p.Address, Message: p.Message, Priority: p.Priority}
}

// Pager is the paging logic. It is not safe for concurrent use.
type Pager struct {
	rules   Rules
	alerts  map[key]*tracked
	queue   []Page
	repeat  map[string]time.Duration
	seq     uint64
	dropped int
}

// New returns a pager applying rules.
func New(rules Rules) *Pager {
	if rules.MaxMessage <= 0 || rules.MaxMessage > espa.MaxMessage {
		rules.MaxMessage = espa.MaxMessage
	}
	if rules.RepeatEvery <= 0 {
		rules.RepeatEvery = time.Minute
	}
	if rules.Language == "" {
		rules.Language = English
	}
	return &Pager{rules: rules, alerts: map[key]*tracked{}, repeat: map[string]time.Duration{}}
}

// SetRepeatEvery records a room's repeat_every (its info's policy); 0
// means the room never repeats.
func (p *Pager) SetRepeatEvery(room string, d time.Duration) { p.repeat[room] = d }

// addresses returns the call addresses that page a, each once, in the
// order of the routes.
func (p *Pager) addresses(a Alert) []string {
	var out []string
	for _, r := range p.rules.Routes {
		if r.matches(a) {
			for _, ad := range r.Addresses {
				if !slices.Contains(out, ad) {
					out = append(out, ad)
				}
			}
		}
	}
	return out
}

// Apply takes one alert record.
func (p *Pager) Apply(ev Event) {
	k := key{ev.Alert.Room, ev.Alert.ID}
	t := p.alerts[k]
	switch ev.Type {
	case Raised, Escalated, Repeated, Reannounced:
		if t == nil {
			t = &tracked{}
			p.alerts[k] = t
		}
		t.alert = ev.Alert
		t.alert.Acked = false
		t.announced = ev.At
		reason := map[EventType]Reason{Raised: ReasonRaised, Escalated: ReasonEscalated,
			Repeated: ReasonRepeated, Reannounced: ReasonReannounced}[ev.Type]
		p.page(t, reason, ev.At)
	case Acked:
		if t == nil {
			return
		}
		t.alert.Acked = true
		p.unqueue(k)
		if p.rules.Notices && len(t.addresses) > 0 {
			p.notice(t, ReasonAcked, ev.At)
		}
	case Cleared:
		delete(p.alerts, k)
		p.unqueue(k)
		if t != nil && !t.alert.Acked && p.rules.Notices && len(t.addresses) > 0 {
			p.notice(t, ReasonCleared, ev.At)
		}
	}
}

// Reconcile takes a room's active alerts from its state (after a gap the
// room could not replay, or at start): an unacknowledged alert the pager
// did not know is paged as raised; one it knew that is no longer active
// is forgotten (without a notice: the records that said why were lost).
func (p *Pager) Reconcile(room string, active []Alert, now time.Time) {
	seen := map[string]bool{}
	for _, a := range active {
		seen[a.ID] = true
		k := key{room, a.ID}
		t := p.alerts[k]
		switch {
		case t == nil && !a.Acked:
			p.Apply(Event{Type: Raised, At: now, Alert: a})
		case t == nil:
			p.alerts[k] = &tracked{alert: a, announced: now}
		case a.Acked && !t.alert.Acked:
			t.alert.Acked = true
			p.unqueue(k)
		}
	}
	for k := range p.alerts {
		if k.room == room && !seen[k.id] {
			delete(p.alerts, k)
			p.unqueue(k)
		}
	}
}

// Forget drops every alert of a room (decommissioned, or left the
// registry).
func (p *Pager) Forget(room string) { p.Reconcile(room, nil, time.Time{}) }

func (p *Pager) page(t *tracked, reason Reason, at time.Time) {
	addrs := p.addresses(t.alert)
	if len(addrs) == 0 {
		return
	}
	for _, ad := range addrs {
		if !slices.Contains(t.addresses, ad) {
			t.addresses = append(t.addresses, ad)
		}
	}
	prio := espa.PriorityNormal
	if t.alert.Severity == SeverityCritical {
		prio = espa.PriorityHigh
	}
	msg := p.rules.Language.Message(t.alert, reason, at, p.rules.MaxMessage)
	for _, ad := range addrs {
		p.enqueue(Page{Room: t.alert.Room, AlertID: t.alert.ID, Address: ad, Priority: prio, Message: msg,
			Reason: reason, Severity: t.alert.Severity, RaisedAt: t.alert.RaisedAt})
	}
}

func (p *Pager) notice(t *tracked, reason Reason, at time.Time) {
	msg := p.rules.Language.Message(t.alert, reason, at, p.rules.MaxMessage)
	for _, ad := range t.addresses {
		p.enqueue(Page{Room: t.alert.Room, AlertID: t.alert.ID, Address: ad, Priority: espa.PriorityNormal,
			Message: msg, Reason: reason, Severity: SeverityInfo, RaisedAt: t.alert.RaisedAt})
	}
}

// enqueue adds pg, replacing a page of the same alert to the same address
// still waiting: the newer announcement says the same, or more.
func (p *Pager) enqueue(pg Page) {
	p.seq++
	pg.seq = p.seq
	for i, q := range p.queue {
		if q.Room == pg.Room && q.AlertID == pg.AlertID && q.Address == pg.Address {
			if q.Priority > pg.Priority { // a notice never lowers a waiting alarm
				pg.Priority = q.Priority
			}
			p.queue[i] = pg
			return
		}
	}
	p.queue = append(p.queue, pg)
}

func (p *Pager) unqueue(k key) {
	p.queue = slices.DeleteFunc(p.queue, func(q Page) bool {
		return q.Room == k.room && q.AlertID == k.id && q.Reason != ReasonAcked && q.Reason != ReasonCleared
	})
}

// repeatEvery is room's repeat interval.
func (p *Pager) repeatEvery(room string) time.Duration {
	if d, ok := p.repeat[room]; ok {
		return d
	}
	return p.rules.RepeatEvery
}

// ownRepeatDue is when t falls due for a repeat of the pager's own, or
// the zero time when it never does: only unacknowledged critical alerts
// repeat, as the room repeats them.
func (p *Pager) ownRepeatDue(t *tracked) time.Time {
	every := p.repeatEvery(t.alert.Room)
	if t.alert.Acked || t.alert.Severity != SeverityCritical || every <= 0 || len(t.addresses) == 0 {
		return time.Time{}
	}
	return t.announced.Add(every + p.rules.RepeatGrace)
}

// Tick repeats what fell due by now (ReasonOwnRepeat).
func (p *Pager) Tick(now time.Time) {
	keys := make([]key, 0, len(p.alerts))
	for k := range p.alerts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.room, b.room), cmp.Compare(a.id, b.id)) })
	for _, k := range keys {
		t := p.alerts[k]
		if due := p.ownRepeatDue(t); !due.IsZero() && !now.Before(due) {
			t.announced = now
			p.page(t, ReasonOwnRepeat, now)
		}
	}
}

// Wake returns when Tick has something to do next; zero for never.
func (p *Pager) Wake() time.Time {
	var w time.Time
	for _, t := range p.alerts {
		if due := p.ownRepeatDue(t); !due.IsZero() && (w.IsZero() || due.Before(w)) {
			w = due
		}
	}
	return w
}

// before orders the queue: high priority first, then the more severe, then
// the older alert, then the first queued.
func before(a, b Page) int {
	return cmp.Or(-cmp.Compare(a.Priority, b.Priority), -cmp.Compare(a.Severity, b.Severity),
		a.RaisedAt.Compare(b.RaisedAt), cmp.Compare(a.seq, b.seq))
}

// Next returns the most urgent page waiting, without taking it off the
// queue: call Sent once the paging system took it.
func (p *Pager) Next() (Page, bool) {
	if len(p.queue) == 0 {
		return Page{}, false
	}
	return slices.MinFunc(p.queue, before), true
}

// Sent takes pg off the queue: the paging system acknowledged it.
func (p *Pager) Sent(pg Page) {
	p.queue = slices.DeleteFunc(p.queue, func(q Page) bool { return q.seq == pg.seq })
}

// Drop takes pg off the queue without sending it (the paging system
// refuses it for good: a bad address).
func (p *Pager) Drop(pg Page) {
	p.Sent(pg)
	p.dropped++
}

// Queued is how many pages wait.
func (p *Pager) Queued() int { return len(p.queue) }

// Active is how many alerts the pager follows.
func (p *Pager) Active() int { return len(p.alerts) }
