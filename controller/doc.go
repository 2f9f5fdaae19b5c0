// Package controller is the logic of one private visit room: a deterministic
// state machine that does no I/O and never reads a clock.
//
// Events go in, each carrying its own timestamp (InputChanged, Command, Tick,
// Fault, FeedbackChanged, ClockCorrected, FunctionTested); one Ready comes
// out of each step: the outputs to drive at once, the records and whether
// the state changed (kept together before anything is sent), and the
// replies, each to its operator. Step is the only way in. NextDeadline says
// when time alone would change something next, so the one goroutine that
// owns a Controller arms a single timer and never polls.
//
// # Rules
//
// Each rule has one home: a small type in the file named after it (its
// due, fire, input, phaseChanged and settle hooks, and its commands), and
// its transcripts in testdata/ under the same number. The phase changes in
// one place, Controller.setPhase (PhaseTransitions lists the moves).
//
//  1. start_visit only from a ready idle room with a duration within the
//     policy maximum; extend_visit only up to the maximum in total, or never
//     if the policy forbids it. Every refusal carries a Code.
//     (rule01_visit.go)
//  2. Before the deadline, at each warning offset, the in-room warning lamp
//     turns on with as many chime pulses as the warning's number, and a
//     visit_warning event goes to staff. (rule02_warnings.go)
//  3. At the deadline: phase overtime, alert time_up, the in-room warning
//     blinks. Unacknowledged after escalate_after it becomes critical
//     (alert_escalated). (rule03_timeup.go)
//  4. The lock reading locked during a visit blinks the in-room warning at
//     once and raises door_locked (critical) after lock_grace; it clears when
//     unlocked. With lock_scope always the rule holds in every phase.
//     (rule04_lock.go)
//  5. A press of any panic point raises panic (critical) in any phase, one
//     alert per point, naming it. It is latched: it clears when acknowledged
//     and, with panic_reset on_site, reset with the staff input at the room
//     while that point is released. (rule05_panic.go)
//  6. A visit ends on end_visit, or (end_on_vacancy) when the door opened and
//     then nobody was detected for vacancy_hold. A door that closes on
//     somebody still detected inside disarms the rule until it opens again,
//     so quiet occupants are never ended by a still PIR. After the visit
//     (and its inspection), presence lasting vacate_timeout raises
//     not_vacated. (rule06_vacancy.go)
//  7. welfare_check_every raises welfare_check during long visits; a press of
//     the staff input, or an acknowledgement, records the check.
//     (rule07_welfare.go)
//  8. An input that becomes unknown raises sensor_fault (critical for a panic
//     point and the lock) and counts as its worse reading. Faults of roomd
//     itself (the outbox, the state file, the clock) come in as Fault events
//     and raise system_fault, so a fault makes roomd louder.
//     (rule08_faults.go)
//  9. Privacy: during a visit, and during the inspection after it, presence
//     appears in no state and no action comes out of a presence change,
//     except the vacancy end of rule 6; presence faults are held until the
//     phase ends. (rule09_privacy.go)
//  10. Alerts have stable ids (kind-N, never reused), a kind, a severity and
//     their times; every change is announced as a Record with a sequence
//     number that grows by one for the life of the room. Every
//     unacknowledged critical alert, of any kind, is announced again every
//     repeat_every (alert_repeated); an acknowledged alert still active
//     reannounce_after after its acknowledgement is unacknowledged again and
//     announced (alert_reannounced). (rule10_alerts.go)
//  11. Readiness: start_visit is refused (not_ready, with the blockers
//     listed) while a panic is not cleared, a door_locked is active, a
//     critical sensor, system or output fault is active, or the inspection
//     after the last visit (inspection_after_visit) is not done; the staff
//     input at the room or set_ready ends the inspection. set_service takes
//     the room out of service. (rule11_readiness.go)
//  12. Signals: the door light shows the pattern of the most urgent
//     unacknowledged critical alert and stays steady until they clear; the
//     door sounder sounds the same pattern until acknowledgement; the
//     reassurance lamp inside blinks while a panic is not acknowledged and
//     is steady once it is. (rule12_signals.go)
//  13. Output supervision: an output whose read-back does not follow raises
//     output_fault (critical for the alarm outputs). (rule13_supervision.go)
//  14. Identity: every record says who caused it, an operator id, on_site
//     for the staff input at the room, or nobody. (rule14_identity.go)
//  15. Downtime and clock: after a restart, what fell due while roomd was
//     down is announced once, at the restart, with its true due time;
//     sensor timers count from the restart; a corrected time axis shifts
//     every time held. (rule15_downtime.go)
//  16. Function tests: a test of the room's lines (roomd commission, full or
//     light) is announced as function_test by its tester. With
//     function_test_every, the info alert function_test_due is active while
//     the last passed full test (or, with none, the room's first start) is
//     that old, naming the panic points never tested; a passed full test
//     clears it, a light test moves no due date.
//     (rule16_function_tests.go)
//  17. Supervised loops: an input read through an end-of-line loop that
//     is bridged, cut or masked raises a critical sensor_fault naming the
//     point and what was done ("wire bridged"), whatever the input; a loop
//     whose resistance drifts raises line_drift (warning), latched until
//     acknowledged. A presence loop's drift in a private phase is held
//     until it ends. (rule17_lines.go)
package controller
