package controller

import "fmt"

// lineRule is rule 17: an input read through an end-of-line supervised
// loop reports what a plain contact cannot. A loop bridged, cut or masked
// (InputChanged.Tamper, with LevelUnknown) raises sensor_fault as rule 8
// does, but critical whatever the input, naming the point and what was
// done to it ("wire bridged"); a warning sensor_fault of the same input
// (flapping, say) is cleared and raised again as critical. A loop whose
// resistance drifts (InputChanged.Drift) raises line_drift, a warning,
// once per drift: it latches (a loop that comes back does not clear it)
// until acknowledged, which clears it; a drift that lasts past the
// acknowledgement is not raised again until the loop has come back and
// drifted anew. A presence loop's drift in a private phase is held and
// raised when the phase ends (rule 9). Its transcripts:
// testdata/rule17_*.txt.
type lineRule struct{ hooks }

// LineKey names an input line in Snapshot.Drifts: the input ("door"), or
// the panic input and its point ("panic:bed").
func LineKey(in Input, point string) string {
	if in == InputPanic {
		if point == "" {
			point = DefaultPanicPoint
		}
		return in.String() + ":" + point
	}
	return in.String()
}

func (lineRule) input(c *Controller, ch change) { lineRule{}.observe(c, ch) }

// same sees a reading whose level did not change: its drift or tamper may
// have.
func (lineRule) same(c *Controller, ch change) {
	if ch.Input == InputPresence && c.s.Phase.Private() {
		lineRule{}.hold(c, ch)
		return
	}
	lineRule{}.observe(c, ch)
}

func (lineRule) observe(c *Controller, ch change) {
	k := alertKey{kind: AlertSensorFault, input: ch.Input}
	if ch.Input == InputPanic {
		k.point = ch.Point
	}
	if a := c.find(k); ch.Level == LevelUnknown && ch.Tamper && a != nil && a.Severity < SeverityCritical {
		c.clear(a)
		c.raise(Alert{Kind: AlertSensorFault, Severity: SeverityCritical, Input: ch.Input, Point: k.point, Detail: ch.Detail}, c.s.Now)
	}
	key := LineKey(ch.Input, ch.Point)
	prev := c.s.Drifts[key]
	if ch.Drift == prev || ch.Level == LevelUnknown {
		return // an unknown level says nothing of drift: the latch holds
	}
	if ch.Drift == DriftNone {
		delete(c.s.Drifts, key)
		c.changed()
		return
	}
	c.s.Drifts[key] = ch.Drift
	c.changed()
	if prev == DriftNone {
		lineRule{}.raise(c, ch.Input, k.point, ch.Drift)
	}
}

// hold keeps the drift of a presence loop in a private phase, silently.
func (lineRule) hold(c *Controller, ch change) {
	if ch.Level == LevelUnknown {
		return
	}
	key := LineKey(ch.Input, ch.Point)
	if ch.Drift == DriftNone {
		delete(c.s.Drifts, key)
	} else {
		c.s.Drifts[key] = ch.Drift
	}
}

func (lineRule) raise(c *Controller, in Input, point string, d Drift) {
	if c.find(alertKey{kind: AlertLineDrift, input: in, point: point}) != nil {
		return // latched already
	}
	c.raise(Alert{Kind: AlertLineDrift, Severity: SeverityWarning, Input: in, Point: point, ClearOnAck: true,
		Detail: fmt.Sprintf("resistance drifted %s", d)}, c.s.Now)
}

// phaseChanged raises the drift of a presence loop held in a private phase.
func (lineRule) phaseChanged(c *Controller, from, to Phase) {
	if !from.Private() || to.Private() {
		return
	}
	if d := c.s.Drifts[LineKey(InputPresence, "")]; d != DriftNone {
		lineRule{}.raise(c, InputPresence, "", d)
	}
}

// settle clears every acknowledged line_drift: the acknowledgement is
// what releases the latch.
func (lineRule) settle(c *Controller) {
	for i := range c.s.Alerts {
		if a := &c.s.Alerts[i]; a.Active() && a.Kind == AlertLineDrift && a.Acked {
			c.clear(a)
		}
	}
}
