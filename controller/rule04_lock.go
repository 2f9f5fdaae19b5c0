package controller

import "time"

// lockRule is rule 4: the lock reading locked during a visit blinks the
// in-room warning at once (rule 12) and raises door_locked (critical) after
// lock_grace; it clears when unlocked. With lock_scope always the rule holds
// in every phase. An unknown lock counts as locked. lock_engaged and
// lock_released records report the bolt. Its transcripts:
// testdata/rule04_*.txt.
type lockRule struct{ hooks }

// applies reports whether a bolted door is an alarm now.
func (lockRule) applies(c *Controller) bool {
	return c.s.Phase.InVisit() || c.p.LockScope == LockAlways
}

// engaged reports whether the lock counts as engaged: locked, or unknown
// after it was read once (the worse reading).
func (lockRule) engaged(c *Controller) bool {
	l := c.s.Levels[InputLock]
	return l == LevelActive || (l == LevelUnknown && c.s.Seen[InputLock])
}

func (r lockRule) due(c *Controller) time.Time {
	if !r.applies(c) || !r.engaged(c) || c.find(alertKey{kind: AlertDoorLocked}) != nil {
		return time.Time{}
	}
	since := c.s.Since[InputLock]
	if v := c.s.Visit; v != nil && v.StartedAt.After(since) {
		since = v.StartedAt
	}
	return since.Add(c.p.LockGrace)
}

func (r lockRule) fire(c *Controller) {
	c.raise(Alert{Kind: AlertDoorLocked, Severity: SeverityCritical}, r.due(c))
}

func (lockRule) input(c *Controller, ch change) {
	if ch.Input != InputLock || ch.Level == LevelUnknown || ch.first {
		return
	}
	if ch.Level == LevelActive {
		c.announce(Record{Type: EventLockEngaged})
	} else {
		c.announce(Record{Type: EventLockReleased})
	}
}

func (r lockRule) settle(c *Controller) {
	if a := c.find(alertKey{kind: AlertDoorLocked}); a != nil && (!r.applies(c) || !r.engaged(c)) {
		c.clear(a)
	}
}
