package controller

import (
	"fmt"
	"strings"
)

// readinessRule is rule 11: start_visit is refused (not_ready, with the
// blockers listed in Reply.Blockers) while the room is not safe for a
// visit: a panic not yet cleared (acknowledged and reset), a door_locked, a
// critical sensor, system or output fault, or, with inspection_after_visit,
// while the inspection after the previous visit is not done. The inspection
// ends with a press of the staff input at the room (by on_site) or set_ready
// (by the operator). set_service takes the room out of service and back;
// a pending inspection survives it. Its transcripts: testdata/rule11_*.txt.
type readinessRule struct{ hooks }

// blocks reports whether a keeps a visit from starting.
func (readinessRule) blocks(a *Alert) bool {
	switch a.Kind {
	case AlertPanic, AlertDoorLocked:
		return true
	case AlertSensorFault, AlertSystemFault, AlertOutputFault:
		return a.Severity >= SeverityCritical
	}
	return false
}

// blockers lists what keeps a visit from starting now.
func (r readinessRule) blockers(c *Controller) []string {
	var out []string
	if c.s.Phase == PhaseInspection {
		out = append(out, BlockerInspection)
	}
	for i := range c.s.Alerts {
		if a := &c.s.Alerts[i]; a.Active() && r.blocks(a) {
			out = append(out, a.ID)
		}
	}
	return out
}

// describe says in words what the blockers are.
func (readinessRule) describe(c *Controller, blockers []string) string {
	words := make([]string, 0, len(blockers))
	for _, b := range blockers {
		a := c.findID(b)
		switch {
		case b == BlockerInspection:
			words = append(words, "the inspection after the last visit is not done")
		case a == nil:
			words = append(words, b)
		case a.Kind == AlertPanic:
			state := "not acknowledged"
			if a.Acked {
				state = "not reset"
			}
			words = append(words, fmt.Sprintf("%s (panic at %s, %s)", b, a.Point, state))
		case a.Kind == AlertSensorFault && a.Point != "":
			words = append(words, fmt.Sprintf("%s (panic point %s unreadable)", b, a.Point))
		case a.Kind == AlertSensorFault:
			words = append(words, fmt.Sprintf("%s (%s unreadable)", b, a.Input))
		case a.Kind == AlertOutputFault:
			words = append(words, fmt.Sprintf("%s (%s does not follow)", b, a.Output))
		case a.Kind == AlertDoorLocked:
			words = append(words, fmt.Sprintf("%s (door bolted)", b))
		case a.Kind == AlertSystemFault:
			words = append(words, fmt.Sprintf("%s (%s)", b, a.Source))
		default:
			words = append(words, b)
		}
	}
	return strings.Join(words, "; ")
}

// startInspection begins the inspection after visit id.
func (readinessRule) startInspection(c *Controller, id string) {
	c.s.Inspection = id
	c.setPhase(PhaseInspection)
	c.announce(Record{Type: EventInspectionStarted, VisitID: id})
}

// endInspection marks the room searched and clean.
func (readinessRule) endInspection(c *Controller) {
	id := c.s.Inspection
	c.s.Inspection = ""
	c.announce(Record{Type: EventInspectionEnded, VisitID: id})
	c.setPhase(PhaseIdle)
}

func (r readinessRule) input(c *Controller, ch change) {
	if ch.Input == InputStaff && ch.Level == LevelActive && c.s.Phase == PhaseInspection {
		r.endInspection(c)
	}
}

func (r readinessRule) setReady(c *Controller, e Command) {
	switch {
	case c.s.Phase.InVisit():
		c.reply(e, CodeVisitInProgress, "a visit is running; the room is ready after it ends")
	case c.s.Phase == PhaseOutOfService:
		c.reply(e, CodeOutOfService, "room is out of service: %s", c.s.ServiceReason)
	case c.s.Phase == PhaseInspection:
		r.endInspection(c)
		c.reply(e, CodeOK, "")
	default:
		c.reply(e, CodeOK, "") // already ready: nothing to record
	}
}

func (readinessRule) setService(c *Controller, e Command) {
	switch {
	case !e.InService && c.s.Phase.InVisit():
		c.reply(e, CodeVisitInProgress, "a visit is running; end it before taking the room out of service")
	case !e.InService:
		changed := c.s.Phase != PhaseOutOfService || c.s.ServiceReason != e.Reason
		c.s.ServiceReason = e.Reason
		c.setPhase(PhaseOutOfService)
		if changed {
			c.announce(Record{Type: EventServiceChanged, InService: false, ServiceReason: e.Reason})
		}
		c.reply(e, CodeOK, "")
	default:
		if c.s.Phase == PhaseOutOfService {
			c.s.ServiceReason = ""
			c.announce(Record{Type: EventServiceChanged, InService: true, ServiceReason: e.Reason})
			if c.s.Inspection != "" {
				c.setPhase(PhaseInspection)
			} else {
				c.setPhase(PhaseIdle)
			}
		}
		c.reply(e, CodeOK, "")
	}
}
