package controller

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// clockRule is rule 15: time that passed while roomd was down, and a time
// axis found wrong, are told honestly.
//
// Restore continues from a snapshot at time at. Nothing is announced with a
// time inside the downtime: the first record is controller_started (resumed)
// at at. Then each thing that fell due while roomd was down is raised or
// announced once, at at, with Record.DueAt its true due time: the deadline
// (time_up, whose severity already shows an escalation that fell due too),
// the latest warning (none if the deadline passed too), a welfare check, and
// per alert one escalation, repeat or reannouncement. Repetition then
// resumes from at. Timers that count from a sensor reading (lock_grace,
// vacancy_hold, vacate_timeout) do not fire on readings older than the
// restart: they count from at, and the inputs, re-read at every start, come
// in as changes if they differ.
//
// ClockCorrected moves every time of the state by its Shift, the
// controller's own included, so that what remains of every duration is
// kept; it changes no phase and announces nothing.
//
// Its transcripts: testdata/rule15_*.txt.
type clockRule struct{ hooks }

// Restore returns a controller that continues from snap at time at (see
// clockRule: what fell due while down is announced once, at at). A visit is
// never announced again as new: the controller_started record has Resumed
// set. A time at before snap.Now counts as snap.Now.
func Restore(p Policy, snap Snapshot, at time.Time) (*Controller, Ready, error) {
	if err := p.Validate(); err != nil {
		return nil, Ready{}, fmt.Errorf("controller policy %q: %w", p.Name, err)
	}
	snap = snap.clone()
	switch snap.Version {
	case 1:
		migrateV1(&snap)
	case SnapshotVersion:
	default:
		return nil, Ready{}, fmt.Errorf("restore controller: snapshot version %d, want %d", snap.Version, SnapshotVersion)
	}
	if int(snap.Phase) >= len(phaseNames) {
		return nil, Ready{}, fmt.Errorf("restore controller: bad phase %d", snap.Phase)
	}
	if snap.Phase.InVisit() != (snap.Visit != nil) {
		return nil, Ready{}, errors.New("restore controller: phase and visit disagree")
	}
	c := &Controller{p: p, warnings: p.warningsDescending(), s: snap}
	c.s.init()
	if c.s.Tests.Since.IsZero() {
		// A snapshot from before rule 16: the room's first start under it
		// counts as its first start.
		c.s.Tests.Since = c.s.Now
		if at.After(c.s.Now) {
			c.s.Tests.Since = at
		}
	}
	// Outputs are set again in full: the hardware was reset to its safe state.
	c.s.Outputs = map[Output]SetOutput{}
	clockRule{}.resume(c, at)
	c.start()
	return c, c.flush(), nil
}

// migrateV1 reads a version 1 snapshot: one panic line (now the point
// DefaultPanicPoint), time_up alerts that escalate implicitly.
func migrateV1(s *Snapshot) {
	s.init()
	if l, ok := s.Levels[InputPanic]; ok && s.Seen[InputPanic] {
		s.Points[DefaultPanicPoint] = l
	}
	delete(s.Levels, InputPanic)
	delete(s.Seen, InputPanic)
	delete(s.Since, InputPanic)
	for i := range s.Alerts {
		a := &s.Alerts[i]
		switch {
		case a.Kind == AlertPanic, a.Kind == AlertSensorFault && a.Input == InputPanic:
			a.Point = DefaultPanicPoint
		case a.Kind == AlertTimeUp:
			a.Escalates = true
		}
	}
	s.Version = SnapshotVersion
}

// resume moves the controller to at after a downtime and announces, once,
// what fell due meanwhile.
func (clockRule) resume(c *Controller, at time.Time) {
	if at.After(c.s.Now) {
		for in, t := range c.s.Since {
			if t.Before(at) {
				c.s.Since[in] = at
			}
		}
		if !c.s.VacateSince.IsZero() && c.s.VacateSince.Before(at) {
			c.s.VacateSince = at
		}
		c.s.Now = at
	}
	c.announce(Record{Type: EventControllerStarted, Resumed: true})
	// Every rule fires once for the whole downtime and moves its deadline
	// past now; the bound only guards against a rule that would not.
	for range 2 * len(rules) {
		d, ok := c.NextDeadline()
		if !ok || d.After(c.s.Now) {
			break
		}
		c.fire()
	}
}

// shift moves every time the controller holds by d.
func (clockRule) shift(c *Controller, d time.Duration) {
	if d == 0 {
		return
	}
	mv := func(t *time.Time) {
		if !t.IsZero() {
			*t = t.Add(d)
		}
	}
	s := &c.s
	mv(&s.Now)
	if v := s.Visit; v != nil {
		mv(&v.StartedAt)
		mv(&v.EndsAt)
		mv(&v.DoorOpenedAt)
		mv(&v.WelfareDue)
	}
	for in, t := range s.Since {
		mv(&t)
		s.Since[in] = t
	}
	mv(&s.VacateSince)
	mv(&s.Tests.Since)
	mv(&s.Tests.LastFull)
	mv(&s.Tests.LastLight)
	for p, t := range s.Tests.Points {
		mv(&t)
		s.Tests.Points[p] = t
	}
	s.Alerts = slices.Clone(s.Alerts)
	for i := range s.Alerts {
		a := &s.Alerts[i]
		mv(&a.RaisedAt)
		mv(&a.AckedAt)
		mv(&a.ClearedAt)
		mv(&a.Next)
	}
	c.changed()
}
