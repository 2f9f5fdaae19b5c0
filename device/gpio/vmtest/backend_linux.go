package main

import (
	"errors"
	"log/slog"

	"github.com/roomd/roomd/device"
)

var errBackendMissing = errors.New("the GPIO backend is not wired into vmtest yet")

// openRoom opens the simulated room through roomd's GPIO backend.
func openRoom(logger *slog.Logger) (device.Backend, error) {
	return nil, errBackendMissing
}
