package main

import (
	"testing"

	"github.com/roomd/roomd/room/roomtest"
)

// startRoom runs a real room (room.Open, the simulator backend) under base
// against the broker at url until the test ends.
func startRoom(t *testing.T, url, base, room string) *roomtest.Room {
	t.Helper()
	return roomtest.Start(t, roomtest.Options{Broker: url, Base: base, Room: room})
}
