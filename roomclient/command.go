package roomclient

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Command is one command to a room: its wire message. Build it with the
// constructors (StartVisit, EndVisit, ...). RequestID and ExpiresAt may be
// left empty: Post and Send fill them (a fresh request id; now plus
// Options.CommandLife). Set them yourself with WithRequestID and
// WithExpiry to send the very same command again later, for instance from
// a booking system's own outbox after a restart.
type Command struct {
	contract.CommandMessage
}

// StartVisit starts a visit of planned length d. visitID is the booking's
// own id (1 to 64 of A-Z a-z 0-9 . _ : -), never a name.
func StartVisit(visitID string, d time.Duration) Command {
	return Command{contract.CommandMessage{Action: controller.ActionStartVisit.String(), VisitID: visitID, Duration: d.String()}}
}

// ExtendVisit adds add to the running visit (refused extension_forbidden or
// exceeds_maximum by the policy; info.policy says which before you ask).
func ExtendVisit(add time.Duration) Command {
	return Command{contract.CommandMessage{Action: controller.ActionExtendVisit.String(), Add: add.String()}}
}

// EndVisit ends the running visit.
func EndVisit() Command {
	return Command{contract.CommandMessage{Action: controller.ActionEndVisit.String()}}
}

// AckAlert acknowledges the alert with id alertID ("panic-3").
func AckAlert(alertID string) Command {
	return Command{contract.CommandMessage{Action: controller.ActionAckAlert.String(), AlertID: alertID}}
}

// SetService puts the room in service (true) or out of service (false);
// reason, shown in the state, may be empty.
func SetService(inService bool, reason string) Command {
	return Command{contract.CommandMessage{Action: controller.ActionSetService.String(), InService: &inService, Reason: reason}}
}

// SetReady ends the inspection after a visit.
func SetReady() Command {
	return Command{contract.CommandMessage{Action: controller.ActionSetReady.String()}}
}

// GetState asks for the room's latest state (the reply carries it).
func GetState() Command {
	return Command{contract.CommandMessage{Action: controller.ActionGetState.String()}}
}

// Replay asks the room to publish its records from seq from to seq to (0:
// up to the latest) of epoch ("": the room's current epoch) again, at most
// contract.MaxReplay of them, on events and alerts, before its reply.
func Replay(epoch string, from, to uint64) Command {
	return Command{contract.CommandMessage{Action: contract.ActionReplay, Epoch: epoch, FromSeq: from, ToSeq: to}}
}

// WithRequestID returns c with its request id set: sending it again with
// the same id is answered with the first reply, never applied twice (within
// the room's retention, info.retention_s).
func (c Command) WithRequestID(id string) Command {
	c.RequestID = id
	return c
}

// WithExpiry returns c with expires_at set to t: the room refuses it
// (expired) at or after t, so it can never act late. The room accepts at
// most 1 h ahead of its own clock.
func (c Command) WithExpiry(t time.Time) Command {
	c.ExpiresAt = contract.FormatTime(t)
	return c
}

// Encode returns the command's payload after checking it with the room's
// own decoder at now: what Encode accepts, a room of the same version reads
// (its verdict on the phase and policy aside). It fails on an empty
// request id or expires_at; use Post and Send, which fill them.
func (c Command) Encode(now time.Time) ([]byte, error) {
	if c.RequestID == "" {
		return nil, errors.New("encode command: no request_id")
	}
	b, err := json.Marshal(c.CommandMessage)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Action, err)
	}
	if _, cerr := contract.DecodeCommand(b, 0, now); cerr != nil {
		return nil, &InvalidCommandError{Action: c.Action, Code: string(cerr.Code), Message: cerr.Message}
	}
	return b, nil
}

// InvalidCommandError is a command the room would refuse whatever its state
// (bad_request, invalid_visit_id, invalid_duration, expired, ...): it is
// not sent.
type InvalidCommandError struct {
	Action, Code, Message string
}

func (e *InvalidCommandError) Error() string {
	return fmt.Sprintf("invalid %s command: %s: %s", e.Action, e.Code, e.Message)
}

// NewRequestID returns a fresh random request id: prefix, a dash and 16 hex
// digits (prefix "" means "rc").
func NewRequestID(prefix string) string {
	if prefix == "" {
		prefix = "rc"
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	id := prefix + "-" + hex.EncodeToString(b)
	if len(id) > contract.MaxRequestID {
		id = id[len(id)-contract.MaxRequestID:]
	}
	return id
}

// Reply is a room's answer to a command: the wire reply and the room it
// came from.
type Reply struct {
	Room string
	contract.ReplyMessage
}

// Err returns nil for an accepted command, or the refusal as a
// *RefusedError.
func (r *Reply) Err() error {
	if r.OK {
		return nil
	}
	e := &RefusedError{Room: r.Room, Action: r.Action, Code: "unknown", Message: "the room gave no reason"}
	if r.Error != nil {
		e.Code, e.Message, e.Blockers = r.Error.Code, r.Error.Message, r.Error.Blockers
	}
	return e
}

// RefusedError is a command the room answered with ok false.
type RefusedError struct {
	Room, Action  string
	Code, Message string
	// Blockers, with not_ready, lists what stops a visit from starting.
	Blockers []string
}

func (e *RefusedError) Error() string {
	s := "refused: " + e.Code + ": " + e.Message
	if len(e.Blockers) > 0 {
		s += " (blockers: " + strings.Join(e.Blockers, ", ") + ")"
	}
	return s
}

// NoReplyError is a command that got no reply before the context ended.
// The command may or may not have been applied: send it again with the
// same request id (and expiry) to learn which; the room answers a command
// it applied with its first reply, and one it did not with expired once
// expires_at has passed.
type NoReplyError struct {
	Room, Action, RequestID string
	Waited                  time.Duration
	Err                     error // the context's error
}

func (e *NoReplyError) Error() string {
	return fmt.Sprintf("no reply from room %s to %s (request %s) within %s", e.Room, e.Action, e.RequestID, e.Waited.Round(time.Millisecond))
}

func (e *NoReplyError) Unwrap() error { return e.Err }
