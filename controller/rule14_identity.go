package controller

// identityRule is rule 14: every record says who caused it (Record.By). A
// command's operator (Command.By, an opaque id that the MQTT edge takes from
// the topic the command came on) is on every record the command causes:
// alert_acked and what the acknowledgement clears, visit_started,
// visit_extended, visit_ended, inspection_ended, service_changed. A press of
// the staff input at the room is by OnSite ("on_site"): the panic reset that
// clears a panic, the welfare check, the end of the inspection. Records of
// timers and sensors, and of commands sent without an operator, have no By;
// alert_raised never has one (the room raises alerts, not a person).
// A command whose By is not an operator id is refused (invalid_operator):
// no command may claim OnSite. The rule has no hooks of its own:
// Controller.Step sets who causes the step, Controller.announce stamps it.
// Its transcripts: testdata/rule14_*.txt.
type identityRule struct{ hooks }

// ValidOperatorID reports whether id may name an operator: the rules of
// visit ids (ValidVisitID: opaque, never a name), and not OnSite.
func ValidOperatorID(id string) bool { return id != OnSite && ValidVisitID(id) }
