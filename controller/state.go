package controller

import (
	"slices"
	"time"
)

// State is the view of the room that may leave the device. Presence appears
// only outside visits (privacy rule); during a visit Presence is nil.
type State struct {
	At    time.Time
	Seq   uint64 // Seq of the latest record announced
	Phase Phase
	Visit *VisitState // nil outside visits

	Door     Level
	Lock     Level
	Presence *Level // nil during a visit

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
func (c *Controller) State() State { return c.StateAt(c.s.Now) }

// StateAt returns the state with the visit's remaining time computed at at
// (for a heartbeat between events). It does not advance the controller.
func (c *Controller) StateAt(at time.Time) State { return c.s.StateAt(at) }

// StateAt returns the view of the snapshot that may leave the device, with
// the visit's remaining time computed at at (not before the snapshot's Now).
// It is what Controller.StateAt returns for the controller the snapshot was
// taken from.
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
	} else {
		p := s.Levels[InputPresence]
		st.Presence = &p
	}
	return st
}
