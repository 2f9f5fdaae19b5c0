package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// commandSpec describes one command subcommand: its positional arguments
// after ROOM and how its flags and arguments become a command message.
type commandSpec struct {
	action controller.CommandAction
	args   string // usage of the arguments after ROOM
	nargs  int    // positional arguments after ROOM
	build  func(cmd *contract.CommandMessage, args []string, f *cmdFlags) error
}

// cmdFlags are the flags of the command subcommands.
type cmdFlags struct {
	visit    string
	duration time.Duration
	by       time.Duration
	reason   string
}

var commandSpecs = map[string]commandSpec{
	"start": {action: controller.ActionStartVisit, args: "--visit ID --duration D",
		build: func(m *contract.CommandMessage, _ []string, f *cmdFlags) error {
			if f.visit == "" {
				return usagef("start: --visit ID is required")
			}
			if !controller.ValidVisitID(f.visit) {
				return usagef("start: --visit %q: want 1 to 64 characters of A-Z a-z 0-9 . _ : -", f.visit)
			}
			if f.duration <= 0 {
				return usagef("start: --duration must be positive, e.g. --duration 1h30m")
			}
			m.VisitID, m.Duration = f.visit, f.duration.String()
			return nil
		}},
	"extend": {action: controller.ActionExtendVisit, args: "--by D",
		build: func(m *contract.CommandMessage, _ []string, f *cmdFlags) error {
			if f.by <= 0 {
				return usagef("extend: --by must be positive, e.g. --by 15m")
			}
			m.Add = f.by.String()
			return nil
		}},
	"end": {action: controller.ActionEndVisit,
		build: func(*contract.CommandMessage, []string, *cmdFlags) error { return nil }},
	"ack": {action: controller.ActionAckAlert, args: "ALERT_ID", nargs: 1,
		build: func(m *contract.CommandMessage, args []string, _ *cmdFlags) error {
			if n := len([]rune(args[0])); n == 0 || n > contract.MaxAlertID {
				return usagef("ack: alert id must be 1 to %d characters", contract.MaxAlertID)
			}
			m.AlertID = args[0]
			return nil
		}},
	"service": {action: controller.ActionSetService, args: "on|off [--reason TEXT]", nargs: 1,
		build: func(m *contract.CommandMessage, args []string, f *cmdFlags) error {
			var in bool
			switch args[0] {
			case "on":
				in = true
			case "off":
			default:
				return usagef("service: want on or off, got %q", args[0])
			}
			if len([]rune(f.reason)) > contract.MaxReason {
				return usagef("service: --reason is longer than %d characters", contract.MaxReason)
			}
			m.InService, m.Reason = &in, f.reason
			return nil
		}},
	"state": {action: controller.ActionGetState,
		build: func(*contract.CommandMessage, []string, *cmdFlags) error { return nil }},
}

// commandRequest is a parsed command subcommand.
type commandRequest struct {
	room string
	msg  contract.CommandMessage
}

// parseCommand reads the arguments of command name.
func parseCommand(g *globals, name string, args []string, stdout io.Writer) (commandRequest, bool, error) {
	spec := commandSpecs[name]
	var f cmdFlags
	fs := newFlags(name, g)
	switch spec.action {
	case controller.ActionStartVisit:
		fs.StringVar(&f.visit, "visit", "", "visit `id`")
		fs.DurationVar(&f.duration, "duration", 0, "planned length of the visit")
	case controller.ActionExtendVisit:
		fs.DurationVar(&f.by, "by", 0, "time to add")
	case controller.ActionSetService:
		fs.StringVar(&f.reason, "reason", "", "why (shown in the room's state)")
	}
	pos, help, err := parseArgs(name, fs, args, stdout)
	if help || err != nil {
		return commandRequest{}, help, err
	}
	want := "visitctl " + name + " ROOM"
	if spec.args != "" {
		want += " " + spec.args
	}
	if len(pos) != 1+spec.nargs {
		return commandRequest{}, false, usagef("%s: want %q, got %d arguments", name, want, len(pos))
	}
	room, err := parseRoom(pos[0])
	if err != nil {
		return commandRequest{}, false, err
	}
	req := commandRequest{room: room, msg: contract.CommandMessage{Action: spec.action.String()}}
	if err := spec.build(&req.msg, pos[1:], &f); err != nil {
		return commandRequest{}, false, err
	}
	if err := g.check(); err != nil {
		return commandRequest{}, false, err
	}
	return req, false, nil
}

// runCommand sends one command and waits for its reply.
func runCommand(ctx context.Context, g globals, name string, args []string, stdout, stderr io.Writer) error {
	req, help, err := parseCommand(&g, name, args, stdout)
	if help || err != nil {
		return err
	}
	reply, retained, err := sendCommand(ctx, g, req)
	var timeout *TimeoutError
	if errors.As(err, &timeout) && retained != nil {
		// state: roomd did not answer; show what the broker kept.
		if g.json {
			fmt.Fprintf(stdout, "%s\n", mustJSON(map[string]any{"room": req.room, "ok": false, "retained_state": retained}))
		} else {
			fmt.Fprintf(stdout, "%s: no reply; last retained state, published %s:\n", req.room, retained.At.Local().Format(dateTimeZone))
			writeState(stdout, retained, wallclock.Now())
		}
		return err
	}
	if err != nil {
		return err
	}
	if g.json {
		fmt.Fprintf(stdout, "%s\n", mustJSON(reply.ReplyMessage))
	}
	if !reply.OK {
		code, msg := "unknown", "the room gave no reason"
		if reply.Error != nil {
			code, msg = reply.Error.Code, reply.Error.Message
		}
		return &RefusedError{Code: code, Message: msg}
	}
	if !g.json {
		fmt.Fprintf(stdout, "%s: %s ok\n", req.room, req.msg.Action)
		if reply.State != nil {
			writeState(stdout, reply.State, wallclock.Now())
		}
	}
	return nil
}

// sendCommand sends req and waits for the reply carrying its request id,
// sending the same command again every 2 s while none came (roomd answers
// a repeat from its first reply; it never applies a command twice). The
// command carries expires_at = now + timeout, so a command delivered after
// visitctl gave up is refused as expired, never applied late. Under a
// broker username visitctl sends as that operator (cmd/{username}), so the
// room records who did it; without one, on the booking system's topic. For
// get_state the retained state is read too and returned with the
// TimeoutError when no reply comes.
func sendCommand(ctx context.Context, g globals, req commandRequest) (*roomclient.Reply, *contract.StateMessage, error) {
	o, err := g.clientOptions()
	if err != nil {
		return nil, nil, err
	}
	o.Operator = g.username
	// The replies in the connection's one subscription request, with the
	// state for get_state.
	// The room's availability too: when no reply comes, it tells a room
	// that is offline from an identity the broker does not let through.
	o.Rooms, o.Streams = []string{req.room}, roomclient.Replies|roomclient.Availabilities
	var mu sync.Mutex
	var retained *contract.StateMessage
	availability := ""
	if req.msg.Action == controller.ActionGetState.String() {
		o.Streams |= roomclient.States
	}
	o.OnMessage = func(m roomclient.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.State != nil && (retained == nil || m.State.Seq >= retained.Seq) {
			retained = m.State
		}
		if m.Kind == roomclient.KindAvailability && len(m.Payload) > 0 {
			availability = string(m.Availability)
		}
	}
	c, err := dial(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	wctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	reply, err := c.Send(wctx, req.room, roomclient.Command{CommandMessage: req.msg})
	var nr *roomclient.NoReplyError
	if errors.As(err, &nr) && ctx.Err() == nil {
		mu.Lock()
		defer mu.Unlock()
		return nil, retained, &TimeoutError{Room: req.room, Action: req.msg.Action, Timeout: g.timeout.String(),
			Username: g.username, Base: g.base, Availability: availability}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("room %s: %s: %w", req.room, req.msg.Action, err)
	}
	return reply, nil, nil
}

// writeState prints a readable summary of a room's state.
func writeState(w io.Writer, s *contract.StateMessage, now time.Time) {
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "  %-9s %s\n", k, fmt.Sprintf(format, args...)) }
	row("phase", "%s", s.Phase)
	if s.ServiceReason != "" {
		row("reason", "%s", s.ServiceReason)
	}
	if v := s.Visit; v != nil {
		row("visit", "%s, started %s, ends %s (%s)", v.ID, v.StartedAt.Local().Format(timeZone),
			v.EndsAt.Local().Format(timeZone), countdown(v.EndsAt.Time, now))
	}
	row("door", "%s", s.Door)
	row("bolt", "%s", s.Lock)
	if s.Presence != "" {
		row("presence", "%s", s.Presence)
	}
	if len(s.Alerts) == 0 {
		row("alerts", "none")
	}
	for i, a := range sortedAlerts(s.Alerts) {
		k := ""
		if i == 0 {
			k = "alerts"
		}
		row(k, "%s", describeAlert(a, now))
	}
	if len(s.Outputs) > 0 {
		names := make([]string, 0, len(s.Outputs))
		for o := range s.Outputs {
			names = append(names, o)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, o := range names {
			parts[i] = o + "=" + s.Outputs[o]
		}
		row("outputs", "%s", strings.Join(parts, " "))
	}
	row("seq", "%d at %s", s.Seq, s.At.Local().Format(dateTimeZone))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("visitctl: encode %T: %v", v, err))
	}
	return b
}
