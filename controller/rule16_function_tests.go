package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// functionTestRule is rule 16: the room's lines are tested periodically, as
// call systems are.
//
// roomd commission walks an installer through every input and output (the
// full test) or through the panic points and the sounder only (the light
// test, monthly between full tests), with roomd stopped; the result comes in
// as FunctionTested and is announced as a function_test record by the
// tester (Record.By), with the mode, whether it passed, roomd's version and
// a result per line.
//
// With function_test_every > 0, an info alert function_test_due is active
// exactly while the last passed full test is function_test_every old or
// older, or, when no full test ever passed, while the room's first start
// (FunctionTests.Since; for a room older than this rule, its first start
// under it) is. Its detail names every panic point the room has read that
// never passed a test, as of when it was raised. A passed full test clears
// it and sets the next due date; a light test records its panic points but
// moves no due date; a failed test of either mode changes neither. The
// alert is an alert like any other (rule 10): acknowledged and still due,
// it is reannounced. Its transcripts: testdata/rule16_*.txt.
type functionTestRule struct{ hooks }

// dueAt is when the reminder falls due (whether or not it is raised); zero
// when the policy has none.
func (functionTestRule) dueAt(c *Controller) time.Time {
	if c.p.FunctionTestEvery <= 0 {
		return time.Time{}
	}
	base := c.s.Tests.LastFull
	if base.IsZero() {
		base = c.s.Tests.Since
	}
	return base.Add(c.p.FunctionTestEvery)
}

func (r functionTestRule) due(c *Controller) time.Time {
	if c.find(alertKey{kind: AlertFunctionTestDue}) != nil {
		return time.Time{}
	}
	return r.dueAt(c)
}

func (r functionTestRule) fire(c *Controller) {
	if c.find(alertKey{kind: AlertFunctionTestDue}) != nil {
		return
	}
	due := r.dueAt(c)
	c.raise(Alert{Kind: AlertFunctionTestDue, Severity: SeverityInfo, Detail: r.detail(c)}, due)
}

func (r functionTestRule) settle(c *Controller) {
	a := c.find(alertKey{kind: AlertFunctionTestDue})
	if a == nil {
		return
	}
	if due := r.dueAt(c); due.IsZero() || c.s.Now.Before(due) {
		c.clear(a)
	}
}

// tested records a function test. An event that does not pass Validate is
// ignored (roomd commission checks it before it records anything).
func (functionTestRule) tested(c *Controller, e FunctionTested) {
	if e.Validate() != nil {
		return
	}
	c.by = e.By
	t := e.Test
	t.Lines = slices.Clone(t.Lines)
	c.announce(Record{Type: EventFunctionTest, Test: &t})
	for _, l := range t.Lines {
		if l.Input == InputPanic && l.Passed {
			c.s.Tests.Points[l.Point] = c.s.Now
		}
	}
	switch {
	case !t.Passed:
	case t.Mode == TestFull:
		c.s.Tests.LastFull = c.s.Now
	case t.Mode == TestLight:
		c.s.Tests.LastLight = c.s.Now
	}
	c.changed()
}

// detail says since when the test is due and which panic points were never
// tested.
func (r functionTestRule) detail(c *Controller) string {
	var b strings.Builder
	if last := c.s.Tests.LastFull; last.IsZero() {
		fmt.Fprintf(&b, "no full function test has passed since the room first started at %s", c.s.Tests.Since.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, "the last full function test passed at %s", last.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "; one is due every %s", days(c.p.FunctionTestEvery))
	var untested []string
	for p := range c.s.Points {
		if _, ok := c.s.Tests.Points[p]; !ok {
			untested = append(untested, p)
		}
	}
	if len(untested) > 0 {
		slices.Sort(untested)
		fmt.Fprintf(&b, "; panic points never tested: %s", strings.Join(untested, ", "))
	}
	return b.String()
}

// days writes d in whole days when it is a whole number of them.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
