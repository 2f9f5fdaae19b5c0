package broker

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrCableCut is a dial through a cut Cable.
var ErrCableCut = errors.New("the room's link is cut (test bench)")

// Cable is a room's network cable to a broker, for a test bench or the
// demo: a room dials through it (room.Options.Dial), and Cut pulls it out.
// Every connection through it is closed at once, without an MQTT
// DISCONNECT, so the broker publishes the room's Last Will, and every dial
// fails until Restore: the room reconnects by itself afterwards.
type Cable struct {
	addr  string
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// NewCable returns a cable to the broker at addr (host:port).
func NewCable(addr string) *Cable { return &Cable{addr: addr, conns: map[net.Conn]struct{}{}} }

// Dial opens a connection to the broker through the cable.
func (c *Cable) Dial(ctx context.Context) (net.Conn, error) {
	c.mu.Lock()
	cut := c.cut
	c.mu.Unlock()
	if cut {
		return nil, ErrCableCut
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		conn.Close()
		return nil, ErrCableCut
	}
	tc := &cableConn{Conn: conn, c: c}
	c.conns[tc] = struct{}{}
	return tc, nil
}

// Cut closes every connection through the cable and refuses new ones.
func (c *Cable) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for conn := range c.conns {
		_ = conn.(*cableConn).Conn.Close()
		delete(c.conns, conn)
	}
}

// Restore lets the room connect again.
func (c *Cable) Restore() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = false
}

// IsCut reports whether the cable is cut.
func (c *Cable) IsCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

type cableConn struct {
	net.Conn
	c    *Cable
	once sync.Once
}

func (t *cableConn) Close() error {
	t.once.Do(func() {
		t.c.mu.Lock()
		delete(t.c.conns, t)
		t.c.mu.Unlock()
	})
	return t.Conn.Close()
}
