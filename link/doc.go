// Package link is a room's transport to its broker: the connection (Client:
// persistent session, its own reconnect loop, the Last Will), the Publisher
// that follows the room's journal in order (records on events and alerts,
// the state carrying their seq, then replies; the broker's acknowledgement
// head stored in the journal), and the command Edge (the idempotency window
// by (operator, request_id), busy under overload, get_state, replay from
// the journal, sim/set on its own queue).
//
// What goes on the wire is package contract's; link decides only when and
// in which order it goes. Nothing leaves a room before its step is in the
// journal: the publisher reads the journal, never the loop.
//
// link/broker is the embedded broker of the demo and the tests;
// link/mqtttest starts real mosquitto brokers (TLS, the shipped ACL,
// bridged sites) for tests; link/homeassistant is the opt-in Home
// Assistant discovery.
package link
