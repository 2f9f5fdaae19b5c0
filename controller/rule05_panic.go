package controller

// panicRule is rule 5: a press of any panic point raises panic (critical) in
// any phase, one alert per point, naming it (Alert.Point). It is latched: it
// clears when acknowledged and, with panic_reset on_site, reset with the
// staff input at the room while that point is released; with panic_reset
// ack, acknowledgement of a released point alone clears it. A press of a
// point whose panic is active adds nothing. Its transcripts:
// testdata/rule05_*.txt.
type panicRule struct{ hooks }

func (panicRule) input(c *Controller, ch change) {
	switch {
	case ch.Input == InputPanic && ch.Level == LevelActive:
		if c.find(alertKey{kind: AlertPanic, point: ch.Point}) == nil {
			c.raise(Alert{Kind: AlertPanic, Severity: SeverityCritical, Point: ch.Point}, c.s.Now)
		}
	case ch.Input == InputStaff && ch.Level == LevelActive:
		for i := range c.s.Alerts {
			a := &c.s.Alerts[i]
			if a.Active() && a.Kind == AlertPanic && !a.Reset && c.s.Points[a.Point] == LevelInactive {
				a.Reset = true
			}
		}
	}
}

func (panicRule) settle(c *Controller) {
	for i := range c.s.Alerts {
		a := &c.s.Alerts[i]
		if a.Active() && a.Kind == AlertPanic && a.Acked && (a.Reset || c.p.PanicReset == PanicResetAck) &&
			c.s.Points[a.Point] == LevelInactive {
			c.clear(a)
		}
	}
}
