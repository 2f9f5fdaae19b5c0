// Package contract is the public MQTT contract of the rooms (docs/mqtt.md,
// docs/asyncapi.yaml), version ContractVersion, in Go: what a room
// publishes and accepts, and nothing of how a room works.
//
// It holds:
//   - the topics ({base}/{room}/state, events, alerts, info, availability,
//     cmd, cmd/{operator}, reply, sim/set, sim/outputs) and the rules for
//     room ids and topic bases (Topics, ValidRoom, ValidateBase);
//   - the wire types of every message (StateMessage, EventMessage,
//     AlertMessage, InfoMessage, ReplyMessage, CommandMessage), the wire
//     time format (Time, FormatTime), epochs (Epoch), and the encoders that
//     turn the controller's records, states and replies into them;
//   - the strict command decoder (DecodeCommand: size, fields, expiry,
//     every refusal with its code) and its encoder (EncodeCommand);
//   - the simulator's control surface (SimControl, DecodeSimControl,
//     ParseSimAssignments);
//   - the vocabularies the contract lists: system_fault sources, limits
//     (MaxReplay, MaxRequestID, MaxExpiresAhead, …) and defaults.
//
// It imports the controller for its vocabulary (phases, alert kinds,
// actions, codes) and nothing of the room's runtime: no journal, daemon,
// device, simulator, MQTT client or broker. A booking system, the guard
// board, visitctl and roompager build on it (through roomclient) without
// compiling a room; the room's transport (package link) and Home Assistant
// discovery (link/homeassistant) encode with it. A test in package arch
// keeps it that way.
//
// The tests here check the code against docs/asyncapi.yaml (read strictly,
// validated by a JSON Schema validator nobody here wrote: contracttest),
// every value of every vocabulary against the schemas and docs/mqtt.md, and
// the decoder against hostile payloads (FuzzDecodeCommand).
package contract
