// Package commission is roomd's function test of a room's wiring, for the
// installer at commissioning and for the periodic tests after it (rule 16
// of package controller): roomd commission, and the gpio-sim VM test, drive
// it.
//
// It runs with roomd stopped, so that the two never fight over the lines:
// the caller opens the room's journal, whose lock tells at once that roomd
// is running, and the device backend. Check refuses a room whose journal
// shows a visit. Walk asks the installer (an Installer: a person at a
// Terminal, or a script) to act on every input line in turn and watches
// each line's settled level, so that it can name the likely wiring fault:
// never_changed, inverted (active_low the wrong way round), bouncing,
// unknown; then it drives every output in turn with its pattern and asks
// whether it shows (not_confirmed when it does not). The light test covers
// the panic points and the sounder only. WriteReport leaves a text and a
// JSON report; Record appends the result to the journal as a step of the
// room (a function_test record by the tester), which roomd publishes when
// it starts again. Run does all of it in that order: a report that cannot
// be written, an interruption or any other error records nothing, and
// every output is off whenever Walk returns.
package commission
