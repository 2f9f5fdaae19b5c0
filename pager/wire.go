package pager

// This file is the pager's only use of the contract's wire types (package
// link): the rest of the package knows Alert and Event only.

import (
	"time"

	"github.com/roomd/roomd/contract"
)

var eventTypes = map[string]EventType{
	"alert_raised": Raised, "alert_escalated": Escalated, "alert_repeated": Repeated,
	"alert_reannounced": Reannounced, "alert_acked": Acked, "alert_cleared": Cleared,
}

// EventOf returns the pager's Event for a record; false for a record that
// does not change what is paged.
func EventOf(m *contract.EventMessage) (Event, bool) {
	typ, ok := eventTypes[m.Type]
	if !ok || m.Alert == nil {
		return Event{}, false
	}
	return Event{Type: typ, At: m.At.Time, Alert: AlertOf(m.Room, m.Alert)}, true
}

// AlertOf returns the pager's view of a wire alert of room.
func AlertOf(room string, a *contract.AlertMessage) Alert {
	sev, _ := ParseSeverity(a.Severity)
	return Alert{Room: room, ID: a.ID, Kind: a.Kind, Severity: sev, Point: a.Point, Input: a.Input,
		Output: a.Output, Source: a.Source, RaisedAt: a.RaisedAt.Time, Acked: a.Acked}
}

// ActiveOf returns the active alerts of a room's state.
func ActiveOf(s *contract.StateMessage) []Alert {
	out := make([]Alert, 0, len(s.Alerts))
	for i := range s.Alerts {
		out = append(out, AlertOf(s.Room, &s.Alerts[i]))
	}
	return out
}

// RepeatEveryOf returns the repeat_every of a room's info.
func RepeatEveryOf(info *contract.InfoMessage) time.Duration {
	return time.Duration(info.Policy.RepeatEveryS) * time.Second
}
