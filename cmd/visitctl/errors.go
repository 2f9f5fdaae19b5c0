package main

import (
	"errors"
	"fmt"
)

// Exit codes of visitctl (docs/visitctl.md).
const (
	ExitOK          = 0 // done; the room accepted the command
	ExitFailed      = 1 // the room refused the command, or another failure
	ExitUsage       = 2 // the command line cannot be read
	ExitTimeout     = 3 // no reply from the room within --timeout
	ExitUnreachable = 4 // the broker cannot be reached or refused the connection
)

// usageError is a command line visitctl cannot read.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (see visitctl help)" }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// RefusedError is a command the room answered with ok false.
type RefusedError struct {
	Code, Message string
}

func (e *RefusedError) Error() string { return "refused: " + e.Code + ": " + e.Message }

// TimeoutError is a command the room did not answer in time.
type TimeoutError struct {
	Room    string
	Action  string
	Timeout string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no reply from room %s to %s within %s (is roomd running and connected to the broker?)", e.Room, e.Action, e.Timeout)
}

// unreachableError is a failure to connect to the broker.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// exitCode maps an error returned by run to the process's exit status.
func exitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, new(*usageError)):
		return ExitUsage
	case errors.As(err, new(*TimeoutError)):
		return ExitTimeout
	case errors.As(err, new(*unreachableError)):
		return ExitUnreachable
	default:
		return ExitFailed
	}
}
