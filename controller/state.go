package controller

import (
	"slices"
	"time"
)

// State is the view of the room that may leave the device. Presence appears
// only outside visits and inspections (privacy rule); then Presence is nil.
type State struct {
	At    time.Time
	Seq   uint64 // Seq of the latest record announced
	Phase Phase
	Visit *VisitState // nil outside visits

	Door     Level
	Lock     Level
	Presence *Level // nil during a visit or an inspection
	// Staff is the staff input at the room (a key switch turned, a
	// presence button held): staff's presence, never the occupants'. Nil
	// until the input has been read (or where none is wired).
	Staff *Level

	Alerts        []Alert // active alerts, in the order raised
	ServiceReason string  // why the room is out of service
	Outputs       map[Output]SetOutput
}

// VisitState describes the running visit.
type VisitState struct {
	ID        string
	StartedAt time.Time
	EndsAt    time.Time
	Remaining time.Duration // 0 in overtime
	Max       time.Duration
}

// State returns the state at the controller's current time.
func (c *Controller) State() State { return c.s.StateAt(c.s.Now) }

// StateAt returns the state with the visit's remaining time computed at at
// (for a heartbeat between events). It does not advance the controller. It
// is Snapshot.StateAt of the controller's snapshot.
func (c *Controller) StateAt(at time.Time) State { return c.s.StateAt(at) }

// StateAt returns the State that a controller restored from s would show
// at at, without restoring one: what may leave the device, derived from the
// snapshot alone. A time before s.Now counts as s.Now. It does not modify s.
func (s *Snapshot) StateAt(at time.Time) State {
	if at.Before(s.Now) {
		at = s.Now
	}
	st := State{
		At:            at,
		Seq:           s.Seq,
		Phase:         s.Phase,
		Door:          s.Levels[InputDoor],
		Lock:          s.Levels[InputLock],
		Alerts:        slices.Clone(s.Alerts),
		ServiceReason: s.ServiceReason,
		Outputs:       cloneMap(s.Outputs),
	}
	if v := s.Visit; v != nil {
		st.Visit = &VisitState{ID: v.ID, StartedAt: v.StartedAt, EndsAt: v.EndsAt, Remaining: max(v.EndsAt.Sub(at), 0), Max: v.Max}
	}
	if s.Seen[InputStaff] {
		k := s.Levels[InputStaff]
		st.Staff = &k
	}
	if !s.Phase.Private() {
		p := s.Levels[InputPresence]
		st.Presence = &p
	}
	return st
}
