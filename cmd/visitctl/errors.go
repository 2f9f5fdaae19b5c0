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

// TimeoutError is a command the room did not answer in time, with what
// visitctl saw of the room meanwhile: with MQTT 3.1.1 the broker drops a
// publish its ACL refuses, and withholds what the identity may not read,
// without saying so, so silence alone does not tell a stopped room from
// an identity the broker does not let through.
type TimeoutError struct {
	Room    string
	Action  string
	Timeout string
	// Username is visitctl's identity ("" anonymous); Base the topic base.
	Username, Base string
	// Availability is the room's availability as read ("" if nothing of
	// the room reached visitctl).
	Availability string
}

func (e *TimeoutError) Error() string {
	head := fmt.Sprintf("no reply from room %s to %s within %s", e.Room, e.Action, e.Timeout)
	who := e.Username
	if who == "" {
		who = "an anonymous client"
	}
	topic := func(sub string) string { return e.Base + "/" + e.Room + "/" + sub }
	cmd := topic("cmd")
	if e.Username != "" {
		cmd = topic("cmd/" + e.Username)
	}
	switch e.Availability {
	case "offline":
		return head + ": the room is offline (its availability says so): roomd is not connected to the broker"
	case "":
		return fmt.Sprintf("%s, and nothing of room %s reached %s: not allowed to read %s and %s as %s? The broker withholds what an identity may not read without saying so: give %s a role in the broker's site file (docs/security.md). Or the room never connected to this broker.",
			head, e.Room, who, topic("availability"), topic("reply"), who, who)
	default:
		return fmt.Sprintf("%s, though it is %s: not allowed to send on %s as %s? The broker drops what an identity may not publish without saying so: give %s a role in the broker's site file that sends commands (docs/security.md).",
			head, e.Availability, cmd, who, who)
	}
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
