package controller

// visitRule is rule 1: start_visit only from a ready idle room with a
// duration within the policy maximum; extend_visit only up to the maximum in
// total, or never if the policy forbids it; end_visit ends the running visit.
// Every refusal carries a Code. Its transcripts: testdata/rule01_*.txt.
type visitRule struct{ hooks }

func (visitRule) start(c *Controller, e Command) {
	now := c.s.Now
	switch {
	case c.s.Phase == PhaseOutOfService:
		c.reply(e, CodeOutOfService, "room is out of service: %s", c.s.ServiceReason)
		return
	case c.s.Phase.InVisit():
		c.reply(e, CodeVisitInProgress, "a visit is already running")
		return
	}
	if blockers := (readinessRule{}).blockers(c); len(blockers) > 0 {
		c.answer(e, Reply{Code: CodeNotReady,
			Message: "room not ready: " + (readinessRule{}).describe(c, blockers), Blockers: blockers})
		return
	}
	switch {
	case !ValidVisitID(e.VisitID):
		c.reply(e, CodeInvalidVisitID, "visit id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
	case e.Duration <= 0:
		c.reply(e, CodeInvalidDuration, "duration must be positive, got %s", e.Duration)
	case e.Duration < MinDuration:
		c.reply(e, CodeInvalidDuration, "duration must be at least %s (records count whole seconds), got %s", MinDuration, e.Duration)
	case e.Duration > c.p.MaxDuration:
		c.reply(e, CodeInvalidDuration, "duration %s is above the policy maximum %s", e.Duration, c.p.MaxDuration)
	default:
		v := &Visit{ID: e.VisitID, StartedAt: now, EndsAt: now.Add(e.Duration), Max: c.p.MaxDuration}
		if c.p.WelfareCheckEvery > 0 {
			v.WelfareDue = now.Add(c.p.WelfareCheckEvery)
		}
		c.s.Visit = v
		c.setPhase(PhaseInVisit)
		c.announce(Record{Type: EventVisitStarted, VisitID: v.ID, EndsAt: v.EndsAt, Duration: e.Duration})
		warningRule{}.skipPassed(c)
		c.reply(e, CodeOK, "")
	}
}

func (visitRule) extend(c *Controller, e Command) {
	v := c.s.Visit
	switch {
	case v == nil:
		c.reply(e, CodeNoVisit, "no visit is running")
	case c.p.Extension == ExtensionForbidden:
		c.reply(e, CodeExtensionForbidden, "the policy %q forbids extensions", c.p.Name)
	case e.Duration <= 0:
		c.reply(e, CodeInvalidDuration, "extension must be positive, got %s", e.Duration)
	case e.Duration < MinDuration:
		c.reply(e, CodeInvalidDuration, "extension must be at least %s (records count whole seconds), got %s", MinDuration, e.Duration)
	case v.EndsAt.Add(e.Duration).Sub(v.StartedAt) > v.Max:
		c.reply(e, CodeExceedsMaximum, "extension by %s would make the visit %s, above the maximum %s",
			e.Duration, v.EndsAt.Add(e.Duration).Sub(v.StartedAt), v.Max)
	default:
		v.EndsAt = v.EndsAt.Add(e.Duration)
		c.announce(Record{Type: EventVisitExtended, VisitID: v.ID, EndsAt: v.EndsAt, Added: e.Duration})
		if v.EndsAt.After(c.s.Now) {
			c.setPhase(PhaseInVisit) // back from overtime; rule 3 clears time_up
		}
		v.WarningsDone, v.Shown = 0, 0
		warningRule{}.skipPassed(c)
		c.changed()
		c.reply(e, CodeOK, "")
	}
}

func (visitRule) end(c *Controller, e Command) {
	if c.s.Visit == nil {
		c.reply(e, CodeNoVisit, "no visit is running")
		return
	}
	visitRule{}.endVisit(c, EndCommand)
	c.reply(e, CodeOK, "")
}

// endVisit ends the running visit: phase idle, or inspection when the
// policy asks for one (rule 11).
func (visitRule) endVisit(c *Controller, reason VisitEndReason) {
	v := c.s.Visit
	c.s.Visit = nil
	c.announce(Record{Type: EventVisitEnded, VisitID: v.ID, EndReason: reason})
	if c.p.InspectionAfterVisit {
		readinessRule{}.startInspection(c, v.ID)
		return
	}
	c.setPhase(PhaseIdle)
}
