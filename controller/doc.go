// Package controller is the logic of one private visit room: a deterministic
// state machine that does no I/O and never reads a clock.
//
// Events go in, each carrying its own timestamp (InputChanged, Command, Tick,
// Fault); actions come out (SetOutput, Announce, StateChanged, Reply).
// NextDeadline says when time alone would change something next, so the one
// goroutine that owns a Controller arms a single timer and never polls.
//
// # Rules
//
//  1. start_visit only from idle with a duration within the policy maximum;
//     extend_visit only up to the maximum in total, or never if the policy
//     forbids it. Every refusal carries a Code.
//  2. Before the deadline, at each warning offset, the in-room warning lamp
//     turns on with as many chime pulses as the warning's number, and a
//     visit_warning event goes to staff.
//  3. At the deadline: phase overtime, alert time_up, the in-room warning
//     blinks. Unacknowledged after escalate_after it becomes critical and is
//     announced again every repeat_every; acknowledged but the visit still
//     running after reannounce_after, it is announced again, unacknowledged.
//  4. The lock reading locked during a visit blinks the in-room warning at
//     once and raises door_locked (critical) after lock_grace; it clears when
//     unlocked. With lock_scope always the rule holds in every phase.
//  5. The panic button raises panic (critical) in any phase. It is latched:
//     it clears when acknowledged and, with panic_reset on_site, reset with
//     the staff input at the room while the button is released.
//  6. A visit ends on end_visit, or (end_on_vacancy) when the door opened and
//     then nobody was detected for vacancy_hold. A door that closes on
//     somebody still detected inside disarms the rule until it opens again,
//     so quiet occupants are never ended by a still PIR. After end_visit,
//     presence lasting vacate_timeout raises not_vacated.
//  7. welfare_check_every raises welfare_check during long visits; a press of
//     the staff input, or an acknowledgement, records the check.
//  8. An input that becomes unknown raises sensor_fault (critical for the
//     panic button and the lock) and counts as its worse reading: the lock
//     as locked, presence as detected (no vacancy end), the door as not
//     opened, the staff input as not pressed. Presence faults that arise
//     during a visit are held and announced when it ends (their timing could
//     reveal presence); presence has no safety role during a visit.
//  9. Privacy: during a visit presence appears in no state and no action
//     comes out of a presence change, except the vacancy end of rule 6.
//  10. Alerts have stable ids (kind-N, never reused), a kind, a severity and
//     their times; every change is announced as a Record with a sequence
//     number that grows by one for the life of the room.
//
// The door alarm output blinks while any critical alert is unacknowledged
// and stays on while one is active; the in-use lamp is on during visits.
// Faults of roomd itself (the outbox, the state file, the clock) come in as
// Fault events and raise system_fault, so a fault makes roomd louder.
package controller
