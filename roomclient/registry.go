package roomclient

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
)

// StaleFactor: a room that is not offline and sent no state for longer than
// StaleFactor × its heartbeat (info.heartbeat_s; contract.DefaultHeartbeat while no
// info is known) is stale. A room publishes its state on every change and
// at least every heartbeat, so two heartbeats without one mean at least one
// heartbeat was missed: the room, its network or the broker is in trouble
// although the Last Will has not (yet) said offline.
const StaleFactor = 2

// Availability of a room, from its retained availability topic.
type Availability string

// The availabilities.
const (
	Unknown Availability = ""        // nothing seen (or cleared)
	Online  Availability = "online"  // roomd is connected
	Offline Availability = "offline" // roomd said so, or the broker published its Last Will
)

// Room is what the registry knows of one room.
type Room struct {
	ID           string       `json:"room"`
	Availability Availability `json:"availability"`
	// Info is the room's retained info (versions, policy, heartbeat,
	// roles wired); nil until seen.
	Info *contract.InfoMessage `json:"info"`
	// LastState is when the latest state was known to be current: its
	// arrival for a live state, its own "at" for a retained one (it may be
	// old); zero if none seen.
	LastState time.Time `json:"last_state"`
	// LastSeen is the latest of LastState and the arrival of any live
	// message of the room (info, availability).
	LastSeen time.Time `json:"last_seen"`
	// Stale: not offline, and no state for more than StaleFactor
	// heartbeats (see StaleFactor).
	Stale bool `json:"stale"`
	// Phase is the phase of the latest state ("" if none seen).
	Phase string `json:"phase"`
	// Epoch and Seq are those of the latest state.
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Heartbeat returns the room's heartbeat (contract.DefaultHeartbeat without info).
func (r Room) Heartbeat() time.Duration {
	if r.Info != nil && r.Info.HeartbeatS > 0 {
		return time.Duration(r.Info.HeartbeatS) * time.Second
	}
	return contract.DefaultHeartbeat
}

// Registry is the list of rooms under one topic base, from their retained
// info, availability and state topics: which rooms exist, their roomd and
// contract versions, their policy, whether they are online and when they
// were last heard of. It does no I/O and reads no clock: feed it with Apply
// (the Client does so when its streams include info, availability and
// state) and read it with Rooms. A room whose info, availability and state
// were all cleared (an empty retained publish, as visitctl decommission
// does) leaves the registry.
type Registry struct {
	rooms map[string]*entry
	// Unreadable counts payloads that could not be decoded.
	Unreadable int
}

type entry struct {
	room                        Room
	hasInfo, hasState, hasAvail bool
	stateSeenAt, liveAny        time.Time
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{rooms: map[string]*entry{}} }

// Apply folds one message into the registry: info, availability and state
// messages of a room; others are ignored. A message with an empty payload
// clears what that topic said.
func (g *Registry) Apply(m Message) {
	if m.Room == "" {
		return
	}
	switch m.Kind {
	case KindInfo, KindAvailability, KindState:
	default:
		return
	}
	if g.rooms == nil {
		g.rooms = map[string]*entry{}
	}
	e := g.rooms[m.Room]
	if e == nil {
		if len(m.Payload) == 0 {
			return
		}
		e = &entry{room: Room{ID: m.Room}}
		g.rooms[m.Room] = e
	}
	live := !m.Retained
	switch m.Kind {
	case KindInfo:
		if len(m.Payload) == 0 {
			e.hasInfo, e.room.Info = false, nil
			break
		}
		var info contract.InfoMessage
		if json.Unmarshal(m.Payload, &info) != nil {
			g.unreadable(m.Room, e)
			return
		}
		e.hasInfo, e.room.Info = true, &info
	case KindAvailability:
		if len(m.Payload) == 0 {
			e.hasAvail, e.room.Availability = false, Unknown
			break
		}
		e.hasAvail = true
		e.room.Availability = Availability(strings.TrimSpace(string(m.Payload)))
	case KindState:
		if len(m.Payload) == 0 {
			e.hasState = false
			e.room.Phase, e.room.Epoch, e.room.Seq = "", "", 0
			e.stateSeenAt = time.Time{}
			break
		}
		var s contract.StateMessage
		if json.Unmarshal(m.Payload, &s) != nil {
			g.unreadable(m.Room, e)
			return
		}
		if e.hasState && s.Epoch == e.room.Epoch && s.Seq < e.room.Seq {
			return // an older state delivered late
		}
		e.hasState = true
		e.room.Phase, e.room.Epoch, e.room.Seq = s.Phase, s.Epoch, s.Seq
		e.stateSeenAt = m.Arrived
		if m.Retained && !s.At.IsZero() && s.At.Before(m.Arrived) {
			// A retained state may be old: judge it by its own time.
			e.stateSeenAt = s.At.Time
		}
	}
	if live && len(m.Payload) > 0 && m.Arrived.After(e.liveAny) {
		e.liveAny = m.Arrived
	}
	if !e.hasInfo && !e.hasAvail && !e.hasState {
		delete(g.rooms, m.Room)
	}
}

// unreadable counts a payload that could not be decoded; a room known by
// nothing else is not kept.
func (g *Registry) unreadable(room string, e *entry) {
	g.Unreadable++
	if !e.hasInfo && !e.hasAvail && !e.hasState {
		delete(g.rooms, room)
	}
}

// Room returns what is known of room id at now.
func (g *Registry) Room(id string, now time.Time) (Room, bool) {
	e, ok := g.rooms[id]
	if !ok {
		return Room{}, false
	}
	return e.view(now), true
}

// Rooms returns every room at now, sorted by id; never nil.
func (g *Registry) Rooms(now time.Time) []Room {
	out := make([]Room, 0, len(g.rooms))
	for _, e := range g.rooms {
		out = append(out, e.view(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (e *entry) view(now time.Time) Room {
	r := e.room
	r.LastState = e.stateSeenAt
	r.LastSeen = e.stateSeenAt
	if e.liveAny.After(r.LastSeen) {
		r.LastSeen = e.liveAny
	}
	r.Stale = r.Availability != Offline && e.hasState && now.Sub(r.LastState) > StaleFactor*r.Heartbeat()
	if r.Availability != Offline && !e.hasState && !r.LastSeen.IsZero() && now.Sub(r.LastSeen) > StaleFactor*r.Heartbeat() {
		r.Stale = true
	}
	return r
}

// AlertBefore is the order a console shows alerts in: critical first, then
// warning, then the rest, and within a severity the oldest first. It takes
// each alert's severity and raised_at.
func AlertBefore(severityA string, raisedA time.Time, severityB string, raisedB time.Time) bool {
	if ra, rb := severityRank(severityA), severityRank(severityB); ra != rb {
		return ra < rb
	}
	return raisedA.Before(raisedB)
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 0
	case "warning":
		return 1
	default:
		return 2
	}
}

// ActiveAlerts returns a room's active alerts: those of its latest state,
// updated by the alert records that came after that state (later, in
// arrival order; an alert_cleared removes its alert, any other record
// replaces or adds it), in AlertBefore's order; never nil.
func ActiveAlerts(state *contract.StateMessage, later []contract.EventMessage) []contract.AlertMessage {
	byID := map[string]contract.AlertMessage{}
	var order []string
	add := func(a contract.AlertMessage) {
		if _, ok := byID[a.ID]; !ok {
			order = append(order, a.ID)
		}
		byID[a.ID] = a
	}
	if state != nil {
		for _, a := range state.Alerts {
			add(a)
		}
	}
	for _, e := range later {
		if e.Alert == nil {
			continue
		}
		if e.Type == "alert_cleared" {
			delete(byID, e.Alert.ID)
			continue
		}
		add(*e.Alert)
	}
	out := make([]contract.AlertMessage, 0, len(byID))
	for _, id := range order {
		if a, ok := byID[id]; ok {
			out = append(out, a)
			delete(byID, id) // cleared and raised again: listed once
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return AlertBefore(out[i].Severity, out[i].RaisedAt.Time, out[j].Severity, out[j].RaisedAt.Time)
	})
	return out
}
