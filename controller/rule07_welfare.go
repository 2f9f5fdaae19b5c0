package controller

import "time"

// welfareRule is rule 7: welfare_check_every raises welfare_check during
// long visits; a press of the staff input, or an acknowledgement, records
// the check (welfare_checked) and the next one falls due a full interval
// later. Its transcripts: testdata/rule07_*.txt.
type welfareRule struct{ hooks }

func (welfareRule) due(c *Controller) time.Time {
	if v := c.s.Visit; v != nil {
		return v.WelfareDue
	}
	return time.Time{}
}

func (welfareRule) fire(c *Controller) {
	v := c.s.Visit
	due := v.WelfareDue
	for !v.WelfareDue.After(c.s.Now) {
		v.WelfareDue = v.WelfareDue.Add(c.p.WelfareCheckEvery)
	}
	c.changed()
	if c.find(alertKey{kind: AlertWelfareCheck}) == nil {
		c.raise(Alert{Kind: AlertWelfareCheck, Severity: SeverityWarning}, due)
	}
}

func (r welfareRule) input(c *Controller, ch change) {
	if ch.Input == InputStaff && ch.Level == LevelActive && c.s.Visit != nil && c.p.WelfareCheckEvery > 0 {
		r.done(c)
	}
}

func (r welfareRule) settle(c *Controller) {
	a := c.find(alertKey{kind: AlertWelfareCheck})
	switch {
	case a == nil:
	case c.s.Visit == nil:
		c.clear(a)
	case a.Acked:
		r.done(c)
	}
}

// done records a welfare check: the alert clears and the next one is due a
// full interval from now.
func (welfareRule) done(c *Controller) {
	v := c.s.Visit
	v.WelfareDue = c.s.Now.Add(c.p.WelfareCheckEvery)
	c.announce(Record{Type: EventWelfareChecked, VisitID: v.ID})
	if a := c.find(alertKey{kind: AlertWelfareCheck}); a != nil {
		c.clear(a)
	}
}
