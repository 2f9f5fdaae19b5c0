package controller

// privacyRule is rule 9: during a visit, and during the inspection after
// one, presence appears in no state and no action comes out of a presence
// change, except the vacancy end of rule 6 (which reads the level through
// NextDeadline). Presence faults are held (Snapshot.HeldFaults) and
// announced when the private phase ends; their timing could reveal presence,
// and presence has no safety role then. The inspection is private too: the
// occupants may still be inside or leaving, and when they left would tell
// about the visit. Its transcripts: testdata/rule09_*.txt.
type privacyRule struct{ hooks }

// hold keeps a presence fault of a private phase for later.
func (privacyRule) hold(c *Controller, ch change) {
	if ch.Level == LevelUnknown {
		c.s.HeldFaults[InputPresence] = ch.Detail
	} else {
		delete(c.s.HeldFaults, InputPresence)
	}
}

// phaseChanged announces, when a private phase ends, what presence did to
// the fault alerts meanwhile.
func (privacyRule) phaseChanged(c *Controller, from, to Phase) {
	if !from.Private() || to.Private() {
		return
	}
	detail, held := c.s.HeldFaults[InputPresence]
	delete(c.s.HeldFaults, InputPresence)
	a := c.find(alertKey{kind: AlertSensorFault, input: InputPresence})
	switch {
	case c.s.Levels[InputPresence] != LevelUnknown && a != nil:
		c.clear(a)
	case held && c.s.Levels[InputPresence] == LevelUnknown && a == nil:
		c.raise(Alert{Kind: AlertSensorFault, Severity: SeverityWarning, Input: InputPresence, Detail: detail}, c.s.Now)
	}
}
