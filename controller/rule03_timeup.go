package controller

import "time"

// timeUpRule is rule 3: at the deadline the phase becomes overtime and
// time_up is raised (warning); unacknowledged after escalate_after it
// becomes critical (alert_escalated), and from then on rule 10 repeats it.
// It clears when the visit ends or is extended past now. Its transcripts:
// testdata/rule03_*.txt.
type timeUpRule struct{ hooks }

func (timeUpRule) due(c *Controller) time.Time {
	if v := c.s.Visit; v != nil && c.s.Phase == PhaseInVisit {
		return v.EndsAt
	}
	return time.Time{}
}

func (timeUpRule) fire(c *Controller) {
	v := c.s.Visit
	c.setPhase(PhaseOvertime)
	// The alert's timers count from the deadline: after a downtime the
	// escalation may be due at once, and shows in this record's severity.
	c.raise(Alert{Kind: AlertTimeUp, Severity: SeverityWarning, Escalates: true}, v.EndsAt)
}

func (timeUpRule) settle(c *Controller) {
	if c.s.Phase == PhaseOvertime {
		return
	}
	if a := c.find(alertKey{kind: AlertTimeUp}); a != nil {
		c.clear(a)
	}
}
