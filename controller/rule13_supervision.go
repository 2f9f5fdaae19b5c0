package controller

// supervisionRule is rule 13: an output may have a feedback input (a
// relay's auxiliary contact). When the device layer reports that its
// read-back did not follow the commanded state within the grace period
// (FeedbackChanged, Follows false), output_fault is raised for that output,
// critical for the alarm outputs (alarm_light, alarm_sounder) and a warning
// for the others; it clears when the read-back follows again. Its
// transcripts: testdata/rule13_*.txt.
type supervisionRule struct{ hooks }

func (supervisionRule) feedback(c *Controller, e FeedbackChanged) {
	if e.Output < OutputInUse || e.Output > OutputReassurance {
		return
	}
	a := c.find(alertKey{kind: AlertOutputFault, output: e.Output})
	switch {
	case !e.Follows && a == nil:
		sev := SeverityWarning
		if e.Output.IsAlarm() {
			sev = SeverityCritical
		}
		c.raise(Alert{Kind: AlertOutputFault, Severity: sev, Output: e.Output, Detail: e.Detail}, c.s.Now)
	case e.Follows && a != nil:
		c.clear(a)
	}
}
