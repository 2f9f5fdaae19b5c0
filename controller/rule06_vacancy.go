package controller

import "time"

// vacancyRule is rule 6: a visit ends on end_visit (rule 1), or, with
// end_on_vacancy, when the door opened and then nobody was detected for
// vacancy_hold. A door that closes on somebody still detected inside
// disarms the rule until it opens again, so quiet occupants are never ended
// by a still PIR. When a visit (and its inspection) is over and somebody is
// still detected, presence lasting vacate_timeout raises not_vacated. The
// rule also reports the door (door_opened, door_closed). Its transcripts:
// testdata/rule06_*.txt.
type vacancyRule struct{ hooks }

// present reports whether presence counts as detected: detected, unknown or unread.
func (vacancyRule) present(c *Controller) bool {
	return c.s.Levels[InputPresence] != LevelInactive
}

// endAt is when the vacancy rule ends the visit, or zero.
func (r vacancyRule) endAt(c *Controller) time.Time {
	v := c.s.Visit
	if v == nil || !c.p.EndOnVacancy || !v.Armed || r.present(c) {
		return time.Time{}
	}
	from := c.s.Since[InputPresence]
	if v.DoorOpenedAt.After(from) {
		from = v.DoorOpenedAt
	}
	return from.Add(c.p.VacancyHold)
}

// vacateAt is when not_vacated is due, or zero.
func (vacancyRule) vacateAt(c *Controller) time.Time {
	if c.s.VacateSince.IsZero() || c.s.Phase.Private() {
		return time.Time{}
	}
	return c.s.VacateSince.Add(c.p.VacateTimeout)
}

func (r vacancyRule) due(c *Controller) time.Time {
	a, b := r.endAt(c), r.vacateAt(c)
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func (r vacancyRule) fire(c *Controller) {
	now := c.s.Now
	if t := r.endAt(c); !t.IsZero() && !t.After(now) {
		visitRule{}.endVisit(c, EndVacated)
	}
	if t := r.vacateAt(c); !t.IsZero() && !t.After(now) {
		c.s.VacateSince = time.Time{}
		c.raise(Alert{Kind: AlertNotVacated, Severity: SeverityWarning}, t)
	}
}

func (r vacancyRule) input(c *Controller, ch change) {
	switch ch.Input {
	case InputDoor:
		if ch.Level == LevelUnknown || ch.first {
			return
		}
		v := c.s.Visit
		if ch.Level == LevelActive {
			c.announce(Record{Type: EventDoorOpened})
			if v != nil {
				v.DoorOpenedAt = c.s.Now
				v.Armed = true
			}
			return
		}
		c.announce(Record{Type: EventDoorClosed})
		if v != nil && r.present(c) {
			v.Armed = false // the door closed on somebody still inside
		}
	case InputPresence:
		if ch.Level == LevelInactive {
			r.stopWatch(c)
		}
	}
}

// observe sees a presence change in a private phase: it may disarm the
// vacancy end, and emits nothing (rule 9).
func (vacancyRule) observe(c *Controller, ch change) {
	if v := c.s.Visit; v != nil && ch.Level == LevelActive && c.s.Levels[InputDoor] == LevelInactive {
		v.Armed = false // somebody is still inside after the door closed
	}
}

func (r vacancyRule) phaseChanged(c *Controller, from, to Phase) {
	switch {
	case to == PhaseInVisit && !from.Private():
		r.stopWatch(c)
	case from.Private() && !to.Private() && r.present(c):
		c.s.VacateSince = c.s.Now
	}
}

// stopWatch ends the not_vacated watch and clears its alert.
func (vacancyRule) stopWatch(c *Controller) {
	c.s.VacateSince = time.Time{}
	if a := c.find(alertKey{kind: AlertNotVacated}); a != nil {
		c.clear(a)
	}
}
