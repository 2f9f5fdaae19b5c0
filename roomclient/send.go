package roomclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// CodeBusy is the refusal that asks to send the same command again.
const CodeBusy = "busy"

// Prepare returns cmd ready to send: a fresh request id and expires_at
// (now plus CommandLife) where they are empty, checked with the room's own
// decoder. Keep what it returns to send the very same command again.
func (c *Client) Prepare(cmd Command) (Command, []byte, error) {
	now := c.now()
	if cmd.RequestID == "" {
		cmd.RequestID = NewRequestID(c.o.RequestPrefix)
	}
	if cmd.ExpiresAt == "" {
		cmd = cmd.WithExpiry(now.Add(c.o.CommandLife))
	}
	b, err := cmd.Encode(now)
	if err != nil {
		return cmd, nil, err
	}
	return cmd, b, nil
}

// commandTopic is where operator's commands to room go ("": the plain
// cmd topic).
func (c *Client) commandTopic(room, operator string) (string, error) {
	t, err := contract.NewTopics(c.base, room)
	if err != nil {
		return "", err
	}
	if operator != "" {
		return t.OperatorCommand(operator), nil
	}
	return t.Command(), nil
}

// Post publishes cmd to room once and waits only for the broker's
// acknowledgement, not for the room's reply (which arrives on the room's
// reply topic: subscribe to Replies to see it). It returns the command as
// sent, with its request id and expiry.
func (c *Client) Post(ctx context.Context, room string, cmd Command) (Command, error) {
	if c.closed.Load() {
		return cmd, ErrClosed
	}
	cmd, payload, err := c.Prepare(cmd)
	if err != nil {
		return cmd, err
	}
	topic, err := c.commandTopic(room, c.o.Operator)
	if err != nil {
		return cmd, err
	}
	return cmd, c.Publish(ctx, topic, payload, false)
}

// Send sends cmd to room and waits for its reply until ctx ends. It
// publishes the command again, with the same request id and expiry, every
// RetryEvery while no reply came, and after a busy reply: the room answers
// a command it already applied with its first reply, so a repeat is never
// applied twice. It keeps asking after expires_at has passed, since the
// answer then says what happened: the first reply if the command was
// applied, expired if it was not.
//
// The reply may refuse the command (reply.Err()); err is a
// *NoReplyError when ctx ended first, an *InvalidCommandError for a
// command no room would accept, or ErrClosed.
func (c *Client) Send(ctx context.Context, room string, cmd Command) (*Reply, error) {
	return c.SendAs(ctx, room, c.o.Operator, cmd)
}

// SendAs is Send on {base}/{room}/cmd/{operator} instead of the client's
// own Options.Operator ("" sends on the plain cmd topic). It is for a
// console that authenticates its operators itself and speaks for them under
// one broker identity (the guard station board): the broker's ACL must let
// that identity write cmd/{operator}, and the room records operator as
// "by". The room remembers a request id per operator, so the same id sent
// as two operators is two commands.
func (c *Client) SendAs(ctx context.Context, room, operator string, cmd Command) (*Reply, error) {
	if operator != "" && !controller.ValidOperatorID(operator) {
		return nil, fmt.Errorf("send as operator %q: want 1 to 64 of A-Z a-z 0-9 . _ : -, not on_site", operator)
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if err := c.receiveReplies(ctx, room); err != nil {
		return nil, err
	}
	cmd, payload, err := c.Prepare(cmd)
	if err != nil {
		return nil, err
	}
	topic, err := c.commandTopic(room, operator)
	if err != nil {
		return nil, err
	}
	key := pendingKey(room, operator, cmd.RequestID)
	ch := make(chan *Reply, 4)
	c.mu.Lock()
	c.pending[key] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, key)
		c.mu.Unlock()
	}()

	start := c.now()
	noReply := func() error {
		return &NoReplyError{Room: room, Action: cmd.Action, RequestID: cmd.RequestID, Waited: c.now().Sub(start), Err: ctx.Err()}
	}
	for {
		if c.cli.IsConnectionOpen() {
			// A failed publish is sent again at the next round.
			tok := c.cli.Publish(topic, 1, false, payload)
			_ = tok
		} else if c.o.NoReconnect {
			return nil, &ConnectError{Broker: c.o.Broker, Username: c.o.Username, Err: errors.New("connection lost")}
		}
		retry := time.NewTimer(c.o.RetryEvery)
		for again := false; !again; {
			select {
			case r := <-ch:
				if r.Error != nil && r.Error.Code == CodeBusy {
					c.log.Info("room busy; sending the command again", "room", room, "action", cmd.Action)
					continue // send again at the next round
				}
				retry.Stop()
				return r, nil
			case <-retry.C:
				again = true
			case <-ctx.Done():
				retry.Stop()
				return nil, noReply()
			case <-c.stop:
				retry.Stop()
				return nil, ErrClosed
			}
		}
	}
}

// receiveReplies makes sure the client is subscribed to room's replies.
func (c *Client) receiveReplies(ctx context.Context, room string) error {
	if !contract.ValidRoom(room) {
		return fmt.Errorf("room id %q: want 1 to 64 of [a-z0-9_-], starting with a letter or digit", room)
	}
	c.mu.Lock()
	have := c.replyFor["+"] || c.replyFor[room]
	c.mu.Unlock()
	if have {
		return nil
	}
	filter := c.base + "/" + room + "/reply"
	if err := c.subscribe(ctx, []string{filter}); err != nil {
		return err
	}
	c.mu.Lock()
	c.replyFor[room] = true
	c.filters[filter] = true
	c.mu.Unlock()
	return nil
}

// reply hands a reply to the Send waiting for it (the receiving goroutine:
// never blocks).
func (c *Client) reply(room string, r *contract.ReplyMessage) {
	c.mu.Lock()
	ch := c.pending[pendingKey(room, r.Operator, r.RequestID)]
	c.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- &Reply{Room: room, ReplyMessage: *r}:
	default:
	}
}

// pendingKey names a Send waiting for its reply: a reply to another
// operator's command with the same request id is not its reply.
func pendingKey(room, operator, requestID string) string {
	return room + "\x00" + operator + "\x00" + requestID
}
