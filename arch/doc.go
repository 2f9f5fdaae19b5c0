// Package arch holds no code: its test keeps the import directions between
// roomd's packages. The table in arch_test.go says, for every package of the
// module, which of the module's packages it may import; a new package or a
// new edge must be added there, on purpose. The layers, from the bottom:
//
//   - controller: the room's logic, pure (no I/O, no clock);
//   - contract: the public MQTT contract, on the controller's vocabulary;
//     mqttconn: the one paho set-up; daemon/timebase: the time axis;
//   - the room's parts: device (and its backends), sim, journal, daemon,
//     link (the room's transport), commission, configs;
//   - room: one assembly of a room from its config;
//   - the clients of the contract, which compile nothing of a room:
//     roomclient, board;
//   - the commands (cmd/...), which may import anything below them.
package arch
