package controller

import "time"

// rule is one numbered rule of the package documentation, in one place: a
// small stateless type whose hooks the controller calls. The rule's state is
// in the Snapshot; the rule's commands are its own methods, dispatched by
// Controller.command.
type rule interface {
	// due is when time alone changes something for the rule next; zero if never.
	due(c *Controller) time.Time
	// fire handles what fell due at or before c.s.Now and moves due past
	// it. After a restart it runs once for a whole downtime, so it must
	// announce what fell due once, with Record.DueAt (see Restore).
	fire(c *Controller)
	// input sees a changed input level, already recorded. A presence change
	// in a private phase never comes here (rule 9).
	input(c *Controller, ch change)
	// phaseChanged runs inside setPhase, the one place the phase changes.
	phaseChanged(c *Controller, from, to Phase)
	// settle runs at the end of every step: alerts whose condition is gone
	// clear; the signal rule, last, drives the outputs.
	settle(c *Controller)
}

// rules are every rule in the order their hooks run.
var rules = []rule{
	visitRule{},        // 1: visits start, extend and end within the policy
	warningRule{},      // 2: warnings before the deadline
	timeUpRule{},       // 3: time_up at the deadline, escalation
	lockRule{},         // 4: door_locked
	panicRule{},        // 5: panic points, latching and reset
	vacancyRule{},      // 6: door records, the vacancy end, not_vacated
	welfareRule{},      // 7: welfare checks
	faultRule{},        // 8: sensor and system faults
	privacyRule{},      // 9: presence never leaves a private phase
	alertRule{},        // 10: alert ids, acknowledgement, repetition, reannouncement
	readinessRule{},    // 11: readiness, inspection, service
	supervisionRule{},  // 13: output supervision
	lineRule{},         // 17: end-of-line supervised loops: tamper and drift
	functionTestRule{}, // 16: periodic function tests
	clockRule{},        // 15: downtime and clock corrections
	identityRule{},     // 14: who caused each record
	signalRule{},       // 12: the outputs, from the state; last
}

// change is an input change as the rules see it.
type change struct {
	InputChanged       // Point is set for the panic input (DefaultPanicPoint if it came empty)
	prev         Level // the level before; LevelUnknown on the first reading
	first        bool  // the first reading of this input (or panic point)
}

// hooks gives a rule no-op hooks; a rule overrides those it needs.
type hooks struct{}

func (hooks) due(*Controller) time.Time              { return time.Time{} }
func (hooks) fire(*Controller)                       {}
func (hooks) input(*Controller, change)              {}
func (hooks) phaseChanged(*Controller, Phase, Phase) {}
func (hooks) settle(*Controller)                     {}
