package controller

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Extension says whether a running visit may be extended.
type Extension uint8

// The extension rules.
const (
	ExtensionUpToMax   Extension = iota // extensions allowed while the total stays within MaxDuration
	ExtensionForbidden                  // no extension at all
)

func (e Extension) String() string {
	if e == ExtensionForbidden {
		return "forbidden"
	}
	return "up_to_max"
}

// LockScope says when a bolted door is an alarm.
type LockScope uint8

// The lock rule scopes.
const (
	LockDuringVisit LockScope = iota // only while a visit runs
	LockAlways                       // in every phase
)

func (s LockScope) String() string {
	if s == LockAlways {
		return "always"
	}
	return "visit"
}

// PanicReset says what clears a latched panic alert.
type PanicReset uint8

// The panic reset modes.
const (
	PanicResetOnSite PanicReset = iota // acknowledged and reset with the staff input at the room
	PanicResetAck                      // acknowledgement alone
)

func (r PanicReset) String() string {
	if r == PanicResetAck {
		return "ack"
	}
	return "on_site"
}

// Policy is the data that shapes a room's rules. It is plain data: presets
// live in configs/policies, one file per jurisdiction.
type Policy struct {
	Name string // a label, e.g. "italy"

	MaxDuration time.Duration // longest visit, extensions included
	Extension   Extension

	// Warnings are offsets before the deadline at which the occupants are
	// warned (lamp and chime) and staff get a visit_warning event, e.g. 10m, 2m.
	Warnings []time.Duration

	EscalateAfter time.Duration // time_up not acknowledged within this: escalate to critical
	RepeatEvery   time.Duration // every critical alert, while unacknowledged: announce again this often
	// ReannounceAfter: an acknowledged alert still active this long after its
	// acknowledgement is unacknowledged again and announced again (rule 10).
	ReannounceAfter time.Duration

	LockScope LockScope
	LockGrace time.Duration // lock engaged this long before door_locked is raised (the in-room warning is at once)

	EndOnVacancy  bool
	VacancyHold   time.Duration // after the door opened, no presence for this long ends the visit
	VacateTimeout time.Duration // after a visit ended, presence lasting this long raises not_vacated

	WelfareCheckEvery time.Duration // 0: no welfare checks
	PanicReset        PanicReset

	// InspectionAfterVisit puts the room in phase inspection after every
	// visit: no visit may start until staff confirm the room searched and
	// clean, with the staff input at the room or the set_ready command.
	InspectionAfterVisit bool

	// FunctionTestEvery is how long a passed full function test counts
	// (rule 16): older, or none since the room first started this long
	// ago, raises function_test_due. 0: no reminder.
	FunctionTestEvery time.Duration
}

// FieldError names a policy or config field and the constraint it breaks.
type FieldError struct {
	Field      string
	Constraint string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Constraint }

// Validate returns every problem of p, each a *FieldError, joined; nil if p is usable.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Constraint: fmt.Sprintf(format, args...)})
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive, got %s", d)
		}
	}
	positive("max_duration", p.MaxDuration)
	positive("escalate_after", p.EscalateAfter)
	positive("repeat_every", p.RepeatEvery)
	positive("reannounce_after", p.ReannounceAfter)
	positive("vacate_timeout", p.VacateTimeout)
	if p.LockGrace < 0 {
		bad("lock_grace", "must not be negative, got %s", p.LockGrace)
	}
	if p.EndOnVacancy {
		positive("vacancy_hold", p.VacancyHold)
	} else if p.VacancyHold < 0 {
		bad("vacancy_hold", "must not be negative, got %s", p.VacancyHold)
	}
	if p.WelfareCheckEvery < 0 {
		bad("welfare_check_every", "must not be negative (0 disables), got %s", p.WelfareCheckEvery)
	}
	if p.FunctionTestEvery < 0 {
		bad("function_test_every", "must not be negative (0 disables), got %s", p.FunctionTestEvery)
	}
	if p.WelfareCheckEvery > 0 && p.MaxDuration > 0 && p.WelfareCheckEvery >= p.MaxDuration {
		bad("welfare_check_every", "%s is not shorter than max_duration %s, so no check would ever fall due", p.WelfareCheckEvery, p.MaxDuration)
	}
	if p.MaxDuration > 0 && p.LockGrace >= p.MaxDuration {
		bad("lock_grace", "%s is not shorter than max_duration %s", p.LockGrace, p.MaxDuration)
	}
	for i, w := range p.Warnings {
		field := fmt.Sprintf("warnings[%d]", i)
		switch {
		case w <= 0:
			bad(field, "must be positive, got %s", w)
		case p.MaxDuration > 0 && w >= p.MaxDuration:
			bad(field, "%s is not shorter than max_duration %s", w, p.MaxDuration)
		}
		if slices.Contains(p.Warnings[:i], w) {
			bad(field, "%s is listed twice", w)
		}
	}
	if p.Extension > ExtensionForbidden {
		bad("extension", "unknown rule %d", p.Extension)
	}
	if p.LockScope > LockAlways {
		bad("lock_scope", "unknown scope %d", p.LockScope)
	}
	if p.PanicReset > PanicResetAck {
		bad("panic_reset", "unknown mode %d", p.PanicReset)
	}
	return errors.Join(errs...)
}

// warningsDescending returns the warning offsets, largest (earliest) first.
func (p Policy) warningsDescending() []time.Duration {
	w := slices.Clone(p.Warnings)
	slices.SortFunc(w, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	return w
}
