package controller

import "time"

// warningRule is rule 2: before the deadline, at each warning offset, the
// in-room warning lamp turns on with as many chime pulses as the warning's
// number (rule 12 drives it from Visit.Shown), and a visit_warning event
// goes to staff. A visit started or extended late skips the warnings already
// past. Of several warnings that fell due while roomd was down, only the
// latest is announced, once, and none if the deadline has passed too
// (time_up says more). Its transcripts: testdata/rule02_*.txt.
type warningRule struct{ hooks }

func (warningRule) due(c *Controller) time.Time {
	v := c.s.Visit
	if v == nil || c.s.Phase != PhaseInVisit || v.WarningsDone >= len(c.warnings) {
		return time.Time{}
	}
	return v.EndsAt.Add(-c.warnings[v.WarningsDone])
}

func (warningRule) fire(c *Controller) {
	v := c.s.Visit
	now := c.s.Now
	n := v.WarningsDone
	for n < len(c.warnings) && !v.EndsAt.Add(-c.warnings[n]).After(now) {
		n++
	}
	if n == v.WarningsDone {
		return
	}
	v.WarningsDone, v.Shown = n, n
	c.changed()
	if !v.EndsAt.After(now) {
		return
	}
	c.announce(Record{Type: EventVisitWarning, VisitID: v.ID, Remaining: v.EndsAt.Sub(now), Warning: n,
		DueAt: c.late(v.EndsAt.Add(-c.warnings[n-1]))})
}

// skipPassed marks as done the warnings whose instant is already past for
// the current deadline, without announcing them, so that a visit started or
// extended late does not fire a burst of stale warnings.
func (warningRule) skipPassed(c *Controller) {
	v := c.s.Visit
	for v.WarningsDone < len(c.warnings) && v.EndsAt.Add(-c.warnings[v.WarningsDone]).Before(c.s.Now) {
		v.WarningsDone++
	}
}
