package controller

import "time"

// alertRule is rule 10: alerts have stable ids (kind-N, never reused), a
// kind, a severity and their times; every change is announced as a Record
// with a sequence number that grows by one for the life of the room.
//
// One rule times every alert (Controller.schedule, here): an unacknowledged
// critical alert, whatever its kind, is announced again every repeat_every
// (alert_repeated) until it is acknowledged; an unacknowledged alert that
// escalates (time_up) becomes critical after escalate_after
// (alert_escalated, the only record of a severity rise). An acknowledged
// alert whose condition lasts reannounce_after past its acknowledgement is
// unacknowledged again and announced (alert_reannounced): a console shows it
// unacknowledged, the door sounder sounds again, and it must be
// acknowledged again; if critical it repeats meanwhile. ack_alert
// acknowledges an active alert by id; acknowledging it again changes
// nothing. Its transcripts: testdata/rule10_*.txt.
type alertRule struct{ hooks }

func (alertRule) due(c *Controller) time.Time {
	var next time.Time
	for i := range c.s.Alerts {
		if t := c.s.Alerts[i].Next; c.s.Alerts[i].Active() && !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

func (alertRule) fire(c *Controller) {
	now := c.s.Now
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if !a.Active() || a.Next.IsZero() || a.Next.After(now) {
			continue
		}
		due := a.Next
		typ := EventAlertRepeated
		from := now
		escalateAt := due // an unacknowledged alert that escalates was due to now
		if a.Acked {
			a.Acked, a.AckedAt = false, time.Time{}
			typ = EventAlertReannounced
			escalateAt = due.Add(c.p.EscalateAfter)
			if a.escalationPending() && escalateAt.After(now) {
				from = due // its escalation keeps its true time
			}
		}
		if a.escalationPending() && !escalateAt.After(now) {
			a.Severity = SeverityCritical
			typ = EventAlertEscalated
		}
		a.Announcements++
		c.schedule(a, from)
		cp := *a
		c.announce(Record{Type: typ, Alert: &cp, DueAt: c.late(due)})
	}
}

// schedule sets a.Next from the instant from (rule 10): reannouncement of an
// acknowledged alert, repetition of an unacknowledged critical one,
// escalation of an unacknowledged one that escalates; nothing otherwise.
func (c *Controller) schedule(a *Alert, from time.Time) {
	switch {
	case !a.Active():
		a.Next = time.Time{}
	case a.Acked:
		a.Next = from.Add(c.p.ReannounceAfter)
	case a.Severity >= SeverityCritical:
		a.Next = from.Add(c.p.RepeatEvery)
	case a.escalationPending():
		a.Next = from.Add(c.p.EscalateAfter)
	default:
		a.Next = time.Time{}
	}
}

// scheduleNew times an alert raised now whose condition fell due at due
// (not after now): its timers count from due, and a timer that also fell due
// already (only after a restart) is folded into its raising: an escalation
// shows in its severity, a repeat is the raising itself.
func (c *Controller) scheduleNew(a *Alert, due time.Time) {
	c.schedule(a, due)
	if !a.Next.IsZero() && !a.Next.After(c.s.Now) {
		if a.escalationPending() {
			a.Severity = SeverityCritical
		}
		c.schedule(a, c.s.Now)
	}
}

// escalationPending reports whether a will become critical after
// escalate_after if nobody acknowledges it: it escalates (time_up) and is
// not critical yet.
func (a *Alert) escalationPending() bool { return a.Escalates && a.Severity < SeverityCritical }

// ack acknowledges an active alert. What the acknowledgement clears (a
// notice, a released and reset panic, a welfare check) the owning rule
// clears when the step settles.
func (alertRule) ack(c *Controller, e Command) {
	a := c.findID(e.AlertID)
	if a == nil {
		c.reply(e, CodeUnknownAlert, "no active alert %q", e.AlertID)
		return
	}
	if !a.Acked {
		a.Acked = true
		a.AckedAt = c.s.Now
		c.schedule(a, c.s.Now)
		cp := *a
		c.announce(Record{Type: EventAlertAcked, Alert: &cp})
	}
	c.reply(e, CodeOK, "")
}
