package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// probe is the MQTT client of check-config --connect: as small as the
// checks need, and in control of what paho is not (it never acknowledges a
// message the broker delivers, so that commands queued in the room's
// persistent session stay there for roomd; it speaks MQTT 5 where the
// broker's answer to a publish says whether the ACL let it through).
type probe struct {
	conn    net.Conn
	r       *bufio.Reader
	v5      bool
	nextID  uint16
	timeout time.Duration
	// delivered are the topics of the messages the broker sent, in order.
	delivered []string
}

// MQTT packet types (high nibble of the first byte).
const (
	pktConnect     = 1
	pktConnack     = 2
	pktPublish     = 3
	pktPuback      = 4
	pktSubscribe   = 8
	pktSuback      = 9
	pktUnsubscribe = 10
	pktUnsuback    = 11
	pktPingresp    = 13
	pktDisconnect  = 14
)

// Reason codes of MQTT 5 (and the CONNACK codes of 3.1.1).
const (
	rcNoMatchingSubscribers = 0x10
	rcNotAuthorized5        = 0x87
	rcBadCredentials5       = 0x86
	rcUnsupportedProtocol5  = 0x84
)

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

// connectPacket builds CONNECT: MQTT 3.1.1 (v5 false) or 5. It never asks
// for a clean session (that would throw the room's queued commands away):
// with MQTT 5 the session is kept as long as it was (expiry 0xFFFFFFFF),
// and at most one message is sent to it unacknowledged (receive maximum 1).
func connectPacket(v5 bool, clientID, username, password string, keepalive uint16) []byte {
	level := byte(4)
	if v5 {
		level = 5
	}
	flags := byte(0) // clean session / clean start: off
	if username != "" {
		flags |= 0x80
		if password != "" {
			flags |= 0x40
		}
	}
	body := appendString(nil, "MQTT")
	body = append(body, level, flags)
	body = binary.BigEndian.AppendUint16(body, keepalive)
	if v5 {
		props := []byte{0x11, 0xff, 0xff, 0xff, 0xff, 0x21, 0x00, 0x01}
		body = appendVarint(body, len(props))
		body = append(body, props...)
	}
	body = appendString(body, clientID)
	if username != "" {
		body = appendString(body, username)
		if password != "" {
			body = appendString(body, password)
		}
	}
	return frame(pktConnect<<4, body)
}

func frame(first byte, body []byte) []byte {
	return append(appendVarint([]byte{first}, len(body)), body...)
}

// ConnackError is the broker's refusal of CONNECT.
type ConnackError struct {
	V5   bool
	Code byte
}

func (e *ConnackError) Error() string {
	return fmt.Sprintf("the broker refused the connection (CONNACK %#x: %s)", e.Code, connackText(e.V5, e.Code))
}

// credentials reports whether the refusal is about the user name or
// password (mosquitto says "not authorized" for an unknown user too).
func (e *ConnackError) credentials() bool {
	if e.V5 {
		return e.Code == rcBadCredentials5 || e.Code == rcNotAuthorized5
	}
	return e.Code == 4 || e.Code == 5
}

func connackText(v5 bool, code byte) string {
	if !v5 {
		switch code {
		case 1:
			return "unacceptable protocol version"
		case 2:
			return "identifier rejected"
		case 3:
			return "server unavailable"
		case 4:
			return "bad user name or password"
		case 5:
			return "not authorized"
		}
		return "unknown"
	}
	switch code {
	case rcUnsupportedProtocol5:
		return "unsupported protocol version"
	case 0x85:
		return "client identifier not valid"
	case rcBadCredentials5:
		return "bad user name or password"
	case rcNotAuthorized5:
		return "not authorized"
	case 0x88:
		return "server unavailable"
	case 0x8A:
		return "banned"
	}
	return "refused"
}

// dialProbe sends CONNECT on conn and reads CONNACK.
func dialProbe(conn net.Conn, v5 bool, clientID, username, password string, timeout time.Duration) (*probe, error) {
	p := &probe{conn: conn, r: bufio.NewReader(conn), v5: v5, timeout: timeout}
	if err := p.write(connectPacket(v5, clientID, username, password, 30)); err != nil {
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	typ, body, err := p.read()
	if err != nil {
		return nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if typ != pktConnack || len(body) < 2 {
		return nil, fmt.Errorf("read CONNACK: the broker sent packet type %d", typ)
	}
	if body[1] != 0 {
		return nil, &ConnackError{V5: v5, Code: body[1]}
	}
	return p, nil
}

func (p *probe) write(b []byte) error {
	if err := p.conn.SetWriteDeadline(wallclock.Deadline(p.timeout)); err != nil {
		return err
	}
	_, err := p.conn.Write(b)
	return err
}

// read returns the next packet's type and body.
func (p *probe) read() (byte, []byte, error) {
	if err := p.conn.SetReadDeadline(wallclock.Deadline(p.timeout)); err != nil {
		return 0, nil, err
	}
	first, err := p.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		c, err := p.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mult
		if c&0x80 == 0 {
			break
		}
		if mult *= 128; i == 3 {
			return 0, nil, errors.New("malformed remaining length")
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(p.r, body); err != nil {
		return 0, nil, err
	}
	return first >> 4, body, nil
}

// await reads packets until one of type want with packet id id, noting
// the messages the broker delivers meanwhile (never acknowledged).
func (p *probe) await(want byte, id uint16) ([]byte, error) {
	for {
		typ, body, err := p.read()
		if err != nil {
			return nil, err
		}
		switch typ {
		case pktPublish:
			if len(body) >= 2 {
				n := int(binary.BigEndian.Uint16(body))
				if 2+n <= len(body) {
					p.delivered = append(p.delivered, string(body[2:2+n]))
				}
			}
		case want:
			if len(body) >= 2 && binary.BigEndian.Uint16(body) == id {
				return body, nil
			}
		case pktPingresp:
		default:
			return nil, fmt.Errorf("unexpected packet type %d", typ)
		}
	}
}

func (p *probe) id() uint16 {
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	return p.nextID
}

// publish sends payload on topic with QoS 1 and returns the reason code
// of the PUBACK: MQTT 5 says 0x87 when the ACL refused it; 3.1.1 says
// nothing (0).
func (p *probe) publish(topic string, payload []byte, retained bool) (byte, error) {
	id := p.id()
	first := byte(pktPublish<<4 | 0x02)
	if retained {
		first |= 0x01
	}
	body := appendString(nil, topic)
	body = binary.BigEndian.AppendUint16(body, id)
	if p.v5 {
		body = append(body, 0)
	}
	if err := p.write(frame(first, append(body, payload...))); err != nil {
		return 0, err
	}
	ack, err := p.await(pktPuback, id)
	if err != nil {
		return 0, fmt.Errorf("publish %s: %w", topic, err)
	}
	if len(ack) > 2 {
		return ack[2], nil
	}
	return 0, nil
}

// subscribe subscribes to filter with qos and returns the SUBACK's code
// (the granted QoS, or 0x80 and above: refused).
func (p *probe) subscribe(filter string, qos byte) (byte, error) {
	id := p.id()
	body := binary.BigEndian.AppendUint16(nil, id)
	if p.v5 {
		body = append(body, 0)
	}
	body = appendString(body, filter)
	body = append(body, qos)
	if err := p.write(frame(pktSubscribe<<4|0x02, body)); err != nil {
		return 0, err
	}
	ack, err := p.await(pktSuback, id)
	if err != nil {
		return 0, fmt.Errorf("subscribe %s: %w", filter, err)
	}
	at := 2
	if p.v5 {
		n, used := readVarint(ack[2:])
		at += used + n
	}
	if at >= len(ack) {
		return 0, fmt.Errorf("subscribe %s: a SUBACK without a code", filter)
	}
	return ack[at], nil
}

// unsubscribe removes filter from the session.
func (p *probe) unsubscribe(filter string) error {
	id := p.id()
	body := binary.BigEndian.AppendUint16(nil, id)
	if p.v5 {
		body = append(body, 0)
	}
	body = appendString(body, filter)
	if err := p.write(frame(pktUnsubscribe<<4|0x02, body)); err != nil {
		return err
	}
	_, err := p.await(pktUnsuback, id)
	return err
}

// collect reads the messages the broker delivers for d.
func (p *probe) collect(d time.Duration) {
	old := p.timeout
	p.timeout = d
	defer func() { p.timeout = old }()
	for {
		if _, err := p.await(0xff, 0); err != nil {
			return
		}
	}
}

// close sends DISCONNECT (the session and its queue stay) and closes.
func (p *probe) close() {
	_ = p.write([]byte{pktDisconnect << 4, 0})
	_ = p.conn.Close()
}

func readVarint(b []byte) (n, used int) {
	mult := 1
	for i, c := range b {
		n += int(c&0x7f) * mult
		if c&0x80 == 0 {
			return n, i + 1
		}
		mult *= 128
	}
	return n, len(b)
}
