package board

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
)

// Category is why a tile stands where it does on the board: the most urgent
// thing about its room. The order of the constants is the board's order.
type Category int

// The categories, most urgent first.
const (
	// CatCritical: an unacknowledged critical alert, or no contact with a
	// room during a visit (its panic points no longer reach the board)
	// that nobody has acknowledged yet.
	CatCritical Category = iota
	CatWarning           // an unacknowledged warning (or info) alert
	// CatNoContact: no contact with a room during a visit, acknowledged:
	// somebody is on the way, and it stays above every calm room.
	CatNoContact
	// CatAcked: an acknowledged critical alert still active (a panic
	// waiting for its reset at the room, a bolt still thrown).
	CatAcked
	CatOvertime     // a visit past its end
	CatVisit        // a visit running (or the inspection after one)
	CatIdle         // ready for a visit
	CatOutOfService // out of service
	CatOffline      // offline, stale or never heard of, outside a visit
)

var categoryNames = [...]string{"critical", "warning", "no_contact", "acked", "overtime", "visit", "idle", "out_of_service", "offline"}

// Categories lists the categories' names in the board's order.
func Categories() []string { return categoryNames[:] }

func (c Category) String() string {
	if c < 0 || int(c) >= len(categoryNames) {
		return "category(?)"
	}
	return categoryNames[c]
}

// MarshalText implements encoding.TextMarshaler.
func (c Category) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// LinkState is what the board knows of a room's connection.
type LinkState string

// The link states.
const (
	LinkOnline  LinkState = "online"  // availability online, states arriving
	LinkOffline LinkState = "offline" // availability offline: roomd said so, or its Last Will
	// LinkStale: not offline, but no state for more than
	// roomclient.StaleFactor × info.heartbeat_s (the room, its network or
	// the broker is in trouble and the Last Will has not said so yet).
	LinkStale   LinkState = "stale"
	LinkUnknown LinkState = "unknown" // no availability seen
)

// showsPresence lists the phases in which a tile may say whether somebody
// is in the room. Everything else (a visit, overtime, the inspection, a
// phase this board does not know) hides it, whatever a message carried.
var showsPresence = map[string]bool{"idle": true, "out_of_service": true}

// AlertState is where an alert stands, as its tile shows it: each has its
// own look, colour, shape and words. (The page adds "paused" while this
// screen's audio is paused.)
type AlertState string

// The alert states.
const (
	AlertRaised    AlertState = "raised"    // unacknowledged, first announcement
	AlertRepeating AlertState = "repeating" // unacknowledged, announced again (repeated, or reannounced after an acknowledgement)
	AlertAcked     AlertState = "acked"     // acknowledged, still active
	// AlertAwaitingReset: a panic acknowledged that only the staff key at
	// the room clears (panic_reset on_site).
	AlertAwaitingReset AlertState = "awaiting_reset"
)

// AlertView is an alert as a tile shows it.
type AlertView struct {
	contract.AlertMessage
	// AckedBy is the operator of the alert_acked record ("" when acked
	// through the booking system's anonymous topic or when this board did
	// not see the record; AckedBySeen says which).
	AckedBy     string     `json:"acked_by,omitempty"`
	AckedBySeen bool       `json:"acked_by_seen,omitempty"`
	State       AlertState `json:"state"`
	// Reannounced: acknowledged once, still active after the policy's
	// reannounce_after, so unacknowledged again; PrevAckedBy acknowledged
	// it then.
	Reannounced bool   `json:"reannounced,omitempty"`
	PrevAckedBy string `json:"prev_acked_by,omitempty"`
	// ResignalAt: an acknowledged alert still active then is announced
	// again (acked_at plus the policy's reannounce_after).
	ResignalAt contract.Time `json:"resignal_at,omitzero"`
}

// ContactView is a room out of reach during a visit, its overtime or its
// inspection: nothing from it reaches the board, its panic points
// included. The board raises it itself; a guard acknowledges it on the
// board (the room cannot hear), and it clears when the room is back.
type ContactView struct {
	// Since is when the room's state was last current (zero: never).
	Since    contract.Time `json:"since"`
	RaisedAt contract.Time `json:"raised_at"`
	AckedBy  string        `json:"acked_by,omitempty"`
	AckedAt  contract.Time `json:"acked_at,omitzero"`
}

// ClockTolerance is how far a room's clock may be from the board's before
// its tile says so.
const ClockTolerance = 5 * time.Second

// RoomView is one tile: everything the browser draws for a room.
type RoomView struct {
	Room     string    `json:"room"`
	Category Category  `json:"category"`
	Rank     int       `json:"rank"` // the category's place in the board's order
	Link     LinkState `json:"link"`
	// LastState is when the latest state was known to be current; only
	// when the link is not online.
	LastState  contract.Time `json:"last_state,omitzero"`
	HeartbeatS int64         `json:"heartbeat_s"`

	Phase string `json:"phase"`
	// Visit carries ends_at, from which the browser counts down.
	Visit *contract.VisitMessage `json:"visit"`
	Door  string                 `json:"door"`
	Lock  string                 `json:"lock"`
	// Presence only outside visits and inspections (showsPresence).
	Presence string `json:"presence,omitempty"`
	// Staff: the staff key at the room is turned (staff there, never the
	// occupants).
	Staff         bool        `json:"staff,omitempty"`
	ServiceReason string      `json:"service_reason,omitempty"`
	Alerts        []AlertView `json:"alerts"`
	// NoContact: the room is out of reach during a visit (CatCritical
	// until acknowledged, then CatNoContact).
	NoContact *ContactView `json:"no_contact,omitempty"`
	// ClockOffsetS is how far the room's clock is ahead of the board's
	// (behind when negative), when more than ClockTolerance.
	ClockOffsetS int64 `json:"clock_offset_s,omitempty"`

	// From the room's info.
	Backend     string   `json:"backend,omitempty"`
	Extension   string   `json:"extension,omitempty"`
	MaxS        int64    `json:"max_s,omitempty"`
	PanicPoints []string `json:"panic_points,omitempty"`
	PanicReset  string   `json:"panic_reset,omitempty"`
	ClockSynced bool     `json:"clock_synced"`
	HasInfo     bool     `json:"has_info"`
	// Lamps are the simulated outputs (sim/outputs), for the tester panel.
	Lamps map[string]string `json:"lamps,omitempty"`
}

// LogEntry is one line of the board's alert log.
type LogEntry struct {
	At   contract.Time `json:"at"`   // when the room recorded it (or the board noticed)
	Room string        `json:"room"` // "" for the board itself
	// Type is the record type (alert_raised, ...) or one of the board's
	// own: link_offline, link_stale, link_online, records_lost.
	Type     string     `json:"type"`
	Alert    *AlertView `json:"alert,omitempty"`
	By       string     `json:"by,omitempty"`
	Seq      uint64     `json:"seq,omitempty"`
	Late     bool       `json:"late,omitempty"` // a record that arrived by replay or late
	Detail   string     `json:"detail,omitempty"`
	Severity string     `json:"severity,omitempty"`
}

// roomModel is what the board holds of one room.
type roomModel struct {
	id      string
	state   *contract.StateMessage
	pending []contract.EventMessage // alert records newer than state, in arrival order
	info    *contract.InfoMessage
	reg     roomclient.Room
	hasReg  bool
	ackedBy map[string]string // alert id → operator of its alert_acked record
	// reannounced: alert id → who had acknowledged it before it was
	// announced again.
	reannounced map[string]string
	lamps       map[string]string
	contact     *ContactView // out of reach during a visit
	clock       clockEstimate
}

// clockEstimate follows how far a room's clock is from the board's, from
// the live states: a sample is the state's "at" minus its arrival (the
// offset less the network's delay), and the largest of the last few is the
// least delayed.
type clockEstimate struct {
	samples []time.Duration
	shown   int64 // seconds, as the tile shows it (0: within ClockTolerance)
}

func (c *clockEstimate) add(d time.Duration) bool {
	if len(c.samples) > 0 && d < slices.Max(c.samples)-time.Minute {
		c.samples = c.samples[:0] // the room's clock went back (corrected): start again
	}
	c.samples = append(c.samples, d)
	if len(c.samples) > 10 {
		c.samples = c.samples[1:]
	}
	est := slices.Max(c.samples)
	var shown int64
	if est > ClockTolerance || est < -ClockTolerance {
		shown = int64(est.Round(time.Second) / time.Second)
		// Keep what the tile shows unless it moved by two seconds or more:
		// a tile must not change at every heartbeat for the jitter.
		if c.shown != 0 && shown-c.shown < 2 && c.shown-shown < 2 {
			shown = c.shown
		}
	}
	changed := shown != c.shown
	c.shown = shown
	return changed
}

// Model is the board's knowledge of every room. It does no I/O and reads
// no clock: feed it with the Apply methods and read it with View and Views.
type Model struct {
	rooms  map[string]*roomModel
	pagers map[string]PagerView // paging gateways by name
	// allow says whether an id is one of the site's rooms (nil: every
	// valid id); the others are only listed (Unknown), never tiles.
	allow   func(string) bool
	unknown map[string]bool
	// brokerLost: the board itself has lost the broker, so every room
	// looks silent; its banner says so, and no room's silence is taken
	// for its own loss of contact.
	brokerLost bool
	brokerBack time.Time
}

// BrokerLost says whether the board has lost the broker (at now):
// meanwhile no room out of reach raises a no-contact alarm (the board's own
// banner is up), nor does a room merely stale within a stale period of
// the board's return (its next state is on its way); a room whose Last
// Will says offline does.
func (m *Model) BrokerLost(lost bool, now time.Time) {
	if m.brokerLost && !lost {
		m.brokerBack = now
	}
	m.brokerLost = lost
}

// NewModel returns an empty model that takes every room.
func NewModel() *Model { return &Model{rooms: map[string]*roomModel{}, unknown: map[string]bool{}} }

// Allow restricts the model to the rooms allow accepts: anything of
// another id (an identity that publishes under its own name on the broker,
// a room of another site) is never a tile, never rings and never ranks;
// Unknown lists it.
func (m *Model) Allow(allow func(string) bool) { m.allow = allow }

// room returns the model of room id, nil for an id the site does not know.
func (m *Model) room(id string) *roomModel {
	r := m.rooms[id]
	if r == nil {
		if !contract.ValidRoom(id) || (m.allow != nil && !m.allow(id)) {
			if len(m.unknown) < 1000 {
				m.unknown[id] = true
			}
			return nil
		}
		r = &roomModel{id: id, ackedBy: map[string]string{}, reannounced: map[string]string{}}
		m.rooms[id] = r
	}
	return r
}

// Known reports whether id is one of the site's rooms.
func (m *Model) Known(id string) bool {
	return contract.ValidRoom(id) && (m.allow == nil || m.allow(id))
}

// Unknown returns the ids heard of that are not the site's rooms, sorted
// (at most 50: the list says that something is wrong, it is no inventory).
func (m *Model) Unknown() []string {
	out := make([]string, 0, len(m.unknown))
	for id := range m.unknown {
		out = append(out, id)
	}
	sort.Strings(out)
	if len(out) > 50 {
		out = out[:50]
	}
	return out
}

// Rooms returns the ids of every room, sorted.
func (m *Model) Rooms() []string {
	out := make([]string, 0, len(m.rooms))
	for id := range m.rooms {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ApplyState takes a room's state. An older state of the same epoch (a
// late copy) is ignored; it reports whether the state was taken.
func (m *Model) ApplyState(id string, s *contract.StateMessage) bool {
	r := m.room(id)
	if r == nil {
		return false
	}
	if old := r.state; old != nil && old.Epoch == s.Epoch && s.Seq < old.Seq {
		return false
	}
	st := *s
	if !showsPresence[st.Phase] {
		st.Presence = ""
	}
	r.state = &st
	kept := r.pending[:0]
	for _, e := range r.pending {
		if e.Epoch == st.Epoch && e.Seq > st.Seq {
			kept = append(kept, e)
		}
	}
	r.pending = kept
	// An acknowledgement this board saw stays attributed while the alert
	// is acked; an alert unacked again (reannounced) or gone forgets it.
	acked, unacked := map[string]bool{}, map[string]bool{}
	for _, a := range st.Alerts {
		if a.Acked {
			acked[a.ID] = true
		} else {
			unacked[a.ID] = true
		}
	}
	for id := range r.ackedBy {
		if !acked[id] && !r.pendingAck(id) {
			delete(r.ackedBy, id)
		}
	}
	for id := range r.reannounced {
		if !unacked[id] && !r.pendingReannounce(id) {
			delete(r.reannounced, id)
		}
	}
	return true
}

// NoteClock takes a live state's "at" (the room's clock) and when it
// arrived (the board's): it reports whether what the tile says of the
// room's clock changed.
func (m *Model) NoteClock(id string, roomAt, arrived time.Time) bool {
	r := m.room(id)
	if r == nil || roomAt.IsZero() || arrived.IsZero() {
		return false
	}
	return r.clock.add(roomAt.Sub(arrived))
}

func (r *roomModel) pendingAck(id string) bool {
	for _, e := range r.pending {
		if e.Alert != nil && e.Alert.ID == id && e.Alert.Acked {
			return true
		}
	}
	return false
}

func (r *roomModel) pendingReannounce(id string) bool {
	for _, e := range r.pending {
		if e.Alert != nil && e.Alert.ID == id && e.Type == "alert_reannounced" {
			return true
		}
	}
	return false
}

// ApplyRecord takes one record of a room, delivered once (roomclient's
// OnRecord), and returns the alert log entry it makes, if any. An alert
// record newer than the room's state updates the tile at once (the state
// that carries it follows); an older one (a replay, a late copy) only goes
// to the log.
func (m *Model) ApplyRecord(rec roomclient.Record) *LogEntry {
	r := m.room(rec.Room)
	if r == nil {
		return nil
	}
	e := rec.EventMessage
	if e.Alert == nil {
		if e.Type == "service_changed" {
			le := &LogEntry{At: e.At, Room: rec.Room, Type: e.Type, By: e.By, Seq: e.Seq, Late: rec.Verdict == roomclient.Filled}
			if e.ServiceReason != nil {
				le.Detail = *e.ServiceReason
			}
			if e.InService != nil && !*e.InService {
				le.Severity = "notice"
			}
			return le
		}
		return nil
	}
	switch e.Type {
	case "alert_acked":
		r.ackedBy[e.Alert.ID] = e.By
		delete(r.reannounced, e.Alert.ID)
	case "alert_reannounced":
		r.reannounced[e.Alert.ID] = r.ackedBy[e.Alert.ID]
		delete(r.ackedBy, e.Alert.ID)
	}
	if s := r.state; s == nil || (e.Epoch == s.Epoch && e.Seq > s.Seq) {
		r.pending = append(r.pending, e)
	}
	av := r.alertView(*e.Alert)
	return &LogEntry{At: e.At, Room: rec.Room, Type: e.Type, Alert: &av, By: e.By, Seq: e.Seq,
		Late: rec.Verdict == roomclient.Filled, Severity: av.Severity}
}

// ApplyInfo takes a room's info (nil: cleared).
func (m *Model) ApplyInfo(id string, info *contract.InfoMessage) bool {
	r := m.room(id)
	if r == nil {
		return false
	}
	r.info = info
	return true
}

// ApplyLamps takes a simulated room's outputs (sim/outputs).
func (m *Model) ApplyLamps(id string, payload []byte) bool {
	var lamps map[string]string
	if len(payload) > 0 && json.Unmarshal(payload, &lamps) != nil {
		return false
	}
	r := m.room(id)
	if r == nil {
		return false
	}
	r.lamps = lamps
	return true
}

// watched are the phases during which a room out of reach is an alarm:
// someone is inside, and nothing of theirs reaches the board.
var watched = map[string]bool{"in_visit": true, "overtime": true, "inspection": true}

// LinkChange is a room whose link changed, as ApplyRegistry reports it;
// Contact says whether it raised (ContactLost) or cleared (ContactBack) the
// room's no-contact alarm.
type LinkChange struct {
	Room          string
	Before, After LinkState
	Contact       ContactChange
}

// ContactChange is what a link change did to a room's no-contact alarm.
type ContactChange int

// The contact changes.
const (
	ContactSame ContactChange = iota
	ContactLost               // out of reach during a visit: the alarm is raised
	ContactBack               // back: the alarm clears
)

// ApplyRegistry takes what roomclient's registry says of every room now
// (availability, staleness, heartbeat), at the board's time now. It
// returns the rooms whose link changed, sorted.
func (m *Model) ApplyRegistry(rooms []roomclient.Room, now time.Time) []LinkChange {
	var changed []LinkChange
	for _, reg := range rooms {
		r := m.room(reg.ID)
		if r == nil {
			continue
		}
		before := r.link()
		r.reg, r.hasReg = reg, true
		if r.info == nil && reg.Info != nil {
			r.info = reg.Info
		}
		after := r.link()
		c := LinkChange{Room: reg.ID, Before: before, After: after}
		lost := after == LinkOffline || after == LinkStale
		switch {
		case lost && r.contact == nil && r.state != nil && watched[r.state.Phase] && !m.brokerLost &&
			(after == LinkOffline || !now.Before(m.brokerBack.Add(roomclient.StaleFactor*reg.Heartbeat()))):
			r.contact = &ContactView{Since: contract.T(reg.LastState), RaisedAt: contract.T(now)}
			c.Contact = ContactLost
		case after == LinkOnline && r.contact != nil:
			r.contact = nil
			c.Contact = ContactBack
		}
		if after != before || c.Contact != ContactSame {
			changed = append(changed, c)
		}
	}
	slices.SortFunc(changed, func(a, b LinkChange) int { return strings.Compare(a.Room, b.Room) })
	return changed
}

// AckContact acknowledges room's no-contact alarm as operator at now: it
// stops ringing and stays on the board until the room is back. It
// reports whether there was one to acknowledge.
func (m *Model) AckContact(id, operator string, now time.Time) bool {
	r := m.rooms[id]
	if r == nil || r.contact == nil || r.contact.AckedBy != "" {
		return false
	}
	r.contact.AckedBy, r.contact.AckedAt = operator, contract.T(now)
	return true
}

func (r *roomModel) link() LinkState {
	if !r.hasReg {
		return LinkUnknown
	}
	switch {
	case r.reg.Availability == roomclient.Offline:
		return LinkOffline
	case r.reg.Stale:
		return LinkStale
	case r.reg.Availability == roomclient.Online:
		return LinkOnline
	default:
		return LinkUnknown
	}
}

// Link returns a room's link state.
func (m *Model) Link(id string) LinkState {
	r := m.rooms[id]
	if r == nil {
		return LinkUnknown
	}
	return r.link()
}

// severities are the severities a tile knows; any other counts as critical
// (a fault makes the board louder).
var severities = map[string]bool{"critical": true, "warning": true, "info": true}

func (r *roomModel) alertView(a contract.AlertMessage) AlertView {
	if !severities[a.Severity] {
		a.Severity = "critical"
	}
	v := AlertView{AlertMessage: a}
	switch {
	case a.Acked:
		v.AckedBy, v.AckedBySeen = r.ackedBy[a.ID]
		v.State = AlertAcked
		if a.Kind == "panic" && !a.Reset && r.info != nil && r.info.Policy.PanicReset == "on_site" {
			v.State = AlertAwaitingReset
		} else if r.info != nil && r.info.Policy.ReannounceAfterS > 0 && !a.AckedAt.IsZero() {
			v.ResignalAt = contract.T(a.AckedAt.Add(time.Duration(r.info.Policy.ReannounceAfterS) * time.Second))
		}
	default:
		v.State = AlertRaised
		if by, ok := r.reannounced[a.ID]; ok {
			v.Reannounced, v.PrevAckedBy, v.State = true, by, AlertRepeating
		} else if a.Announcements > 1 {
			v.State = AlertRepeating
		}
	}
	return v
}

// alerts returns the room's active alerts: the state's, updated by the
// alert records that came after it, critical first, then oldest first.
func (r *roomModel) alerts() []AlertView {
	active := roomclient.ActiveAlerts(r.state, r.pending)
	out := make([]AlertView, 0, len(active))
	for _, a := range active {
		out = append(out, r.alertView(a))
	}
	return out
}

// View returns room id's tile; ok is false for a room the board does not know.
func (m *Model) View(id string) (RoomView, bool) {
	r := m.rooms[id]
	if r == nil {
		return RoomView{}, false
	}
	return r.view(), true
}

// Views returns every tile in the board's order (Less).
func (m *Model) Views() []RoomView {
	out := make([]RoomView, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r.view())
	}
	slices.SortFunc(out, func(a, b RoomView) int {
		if Less(a, b) {
			return -1
		}
		if Less(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// Less is the board's order: by category (most urgent first), then, among
// alarms, the oldest unacknowledged one first, then by room id.
func Less(a, b RoomView) bool {
	if a.Category != b.Category {
		return a.Category < b.Category
	}
	if a.Category == CatCritical || a.Category == CatWarning || a.Category == CatNoContact {
		ta, tb := oldestUnacked(a), oldestUnacked(b)
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
	}
	return a.Room < b.Room
}

func oldestUnacked(v RoomView) time.Time {
	var t time.Time
	if c := v.NoContact; c != nil && (c.AckedBy == "" || v.Category == CatNoContact) {
		t = c.RaisedAt.Time
	}
	for _, a := range v.Alerts {
		if !a.Acked && (t.IsZero() || a.RaisedAt.Before(t)) {
			t = a.RaisedAt.Time
		}
	}
	return t
}

func (r *roomModel) view() RoomView {
	v := RoomView{Room: r.id, Link: r.link(), Alerts: r.alerts(), ClockOffsetS: r.clock.shown}
	if r.hasReg {
		v.HeartbeatS = int64(r.reg.Heartbeat() / time.Second)
	} else {
		v.HeartbeatS = int64(contract.DefaultHeartbeat / time.Second)
	}
	if s := r.state; s != nil {
		// Not the state's "at": a heartbeat republishes the same state
		// later, and the tile must not change for it.
		v.Phase, v.Door, v.Lock, v.ServiceReason = s.Phase, s.Door, s.Lock, s.ServiceReason
		v.Staff = s.Staff == "pressed"
		if s.Visit != nil {
			vis := *s.Visit
			// The browser counts down from ends_at; remaining_s would change
			// the tile at every heartbeat of a visit for nothing.
			vis.RemainingS = 0
			v.Visit = &vis
		}
		if showsPresence[s.Phase] {
			v.Presence = s.Presence
		}
	}
	if i := r.info; i != nil {
		v.HasInfo = true
		v.Backend, v.Extension, v.MaxS = i.Backend, i.Policy.Extension, i.Policy.MaxDurationS
		v.PanicPoints, v.PanicReset, v.ClockSynced = i.PanicPoints, i.Policy.PanicReset, i.ClockSynced
		if i.HeartbeatS > 0 {
			v.HeartbeatS = i.HeartbeatS
		}
	}
	if v.Backend == "sim" && len(r.lamps) > 0 {
		v.Lamps = r.lamps
	}
	if v.Link != LinkOnline && r.hasReg {
		// Only a room that lost its link says when it was last current: a
		// heartbeat of an online room changes nothing on its tile, so it
		// sends no update to the browsers.
		v.LastState = contract.T(r.reg.LastState)
	}
	if r.contact != nil {
		c := *r.contact
		v.NoContact = &c
	}
	v.Category = categorize(v)
	v.Rank = int(v.Category)
	return v
}

// categorize says where a tile goes: alarms first (an offline room with an
// unacknowledged critical alert stays on top: a fault makes the board
// louder; a room out of reach during a visit is critical itself), then the
// acknowledged alarms still standing, then the phase, then a lost link.
func categorize(v RoomView) Category {
	crit, warn, ackedCrit := false, false, false
	for _, a := range v.Alerts {
		switch {
		case a.Acked && a.Severity == "critical":
			ackedCrit = true
		case a.Acked:
		case a.Severity == "critical":
			crit = true
		default:
			warn = true
		}
	}
	switch {
	case crit || (v.NoContact != nil && v.NoContact.AckedBy == ""):
		return CatCritical
	case warn:
		return CatWarning
	case v.NoContact != nil:
		return CatNoContact
	case ackedCrit:
		return CatAcked
	case v.Link != LinkOnline:
		return CatOffline
	}
	switch v.Phase {
	case "overtime":
		return CatOvertime
	case "in_visit", "inspection":
		return CatVisit
	case "idle":
		return CatIdle
	case "out_of_service":
		return CatOutOfService
	default:
		return CatOffline
	}
}

// PagerView is a paging gateway (roompager) as the board shows it: whether
// the guards' handsets can be reached. From the retained
// {base}/_pagers/{gateway}/status (docs/mqtt.md).
type PagerView struct {
	Gateway string `json:"gateway"`
	// State: ok, unknown (just started), paging_down (the paging system
	// does not answer), offline (the gateway's Last Will).
	State  string `json:"state"`
	Since  string `json:"since,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Down: the handsets are not reachable through this gateway.
	Down bool `json:"down"`
}

// ApplyPagerStatus takes a gateway's status payload; an empty one (the
// retained status cleared) forgets the gateway. It reports whether
// anything changed.
func (m *Model) ApplyPagerStatus(gateway string, payload []byte) bool {
	if m.pagers == nil {
		m.pagers = map[string]PagerView{}
	}
	if len(payload) == 0 {
		_, had := m.pagers[gateway]
		delete(m.pagers, gateway)
		return had
	}
	var v PagerView
	if err := json.Unmarshal(payload, &v); err != nil || v.State == "" {
		v = PagerView{State: "unreadable", Detail: "the gateway's status could not be read"}
	}
	v.Gateway = gateway
	v.Down = v.State != "ok" && v.State != "unknown"
	old, had := m.pagers[gateway]
	m.pagers[gateway] = v
	return !had || old != v
}

// Pagers returns every paging gateway known, by name.
func (m *Model) Pagers() []PagerView {
	out := make([]PagerView, 0, len(m.pagers))
	for _, v := range m.pagers {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b PagerView) int { return strings.Compare(a.Gateway, b.Gateway) })
	return out
}
