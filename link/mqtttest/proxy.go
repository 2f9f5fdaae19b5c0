package mqtttest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// Proxy forwards TCP connections from a loopback port to a target address,
// the way a WAN link joins a site to its centre, and can be cut and restored.
// It forwards bytes only: TLS and MQTT pass through it untouched.
//
// StartMQTTProxy is StartProxy for an MQTT broker: it reads what the broker
// sends as MQTT packets, so that DropPubacks can drop some.
func StartMQTTProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := StartProxy(t, target)
	p.mu.Lock()
	p.packets = true
	p.mu.Unlock()
	return p
}

// DropPubacks makes a proxy of StartMQTTProxy drop, from now on, every
// PUBACK the target sends to the client (on connections with no delay),
// until called with false: a broker that takes messages and forwards them, but never
// acknowledges them, as a wedged bridge or a broken middlebox does.
func (p *Proxy) DropPubacks(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAcks = on
}

// DroppedPubacks returns how many PUBACKs DropPubacks dropped.
func (p *Proxy) DroppedPubacks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Cut closes every forwarded connection at once, without an MQTT
// DISCONNECT, as a failed link or a crashed peer would, and then accepts
// and immediately closes every new connection until Resume. Both ends see
// their connection end (EOF) at the moment of the cut; a link that stays
// silent instead (packets dropped, keepalive needed to notice) is not
// modelled.
//
// Its methods are safe for concurrent use. NewProxy does not need a test;
// StartProxy is the test's shorthand, closing the proxy when the test ends.
type Proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	down     bool
	closed   bool
	delay    time.Duration
	packets  bool // the target's bytes are read as MQTT packets (StartMQTTProxy)
	dropAcks bool // PUBACKs from the target are dropped
	dropped  int
	accepted int
	refused  int
	done     chan struct{}
}

// NewProxy listens on a free loopback port and forwards every connection to
// target ("host:port", or a "tcp://" or "ssl://" URL).
func NewProxy(target string) (*Proxy, error) {
	for _, scheme := range []string{"tcp://", "ssl://", "tls://", "mqtt://", "mqtts://"} {
		target = strings.TrimPrefix(target, scheme)
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: listen: %w", target, err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	go p.serve()
	return p, nil
}

// StartProxy starts a proxy to target for the test and closes it when the
// test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the proxy's own address, "127.0.0.1:NNNN".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns "tcp://" + Addr().
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetDelay adds d of latency in each direction to connections accepted from
// now on (a round trip gains 2×d). Bytes keep their order and nothing limits
// the throughput: a long, fat link.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Cut closes every forwarded connection and refuses new ones until Resume.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Resume forwards new connections again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Down reports whether the proxy is cut.
func (p *Proxy) Down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

// Accepted returns how many connections the proxy has forwarded so far
// (refused ones, while cut, are not counted).
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Refused returns how many connections the proxy has closed unanswered
// because it was cut: the attempts a client made to get through.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Close stops listening and closes every forwarded connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	<-p.done
	p.Cut()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close proxy %s: %w", p.Addr(), err)
	}
	return nil
}

func (p *Proxy) serve() {
	defer close(p.done)
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, delay, packets := p.down || p.closed, p.delay, p.packets
		if down {
			p.refused++
		}
		p.mu.Unlock()
		if down {
			_ = in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		if p.down || p.closed {
			p.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.accepted++
		p.mu.Unlock()
		go p.pipe(out, in, delay)
		if delay <= 0 && packets {
			go p.pipePackets(in, out)
		} else {
			go p.pipe(in, out, delay)
		}
	}
}

// pipe copies src to dst until either ends, then closes both.
func (p *Proxy) pipe(dst, src net.Conn, delay time.Duration) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	if delay <= 0 {
		_, _ = io.Copy(dst, src)
		return
	}
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 256)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for c := range ch {
			if d := wallclock.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				for range ch { // drain so the reader never blocks
				}
				return
			}
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- chunk{b: buf[:n], at: wallclock.Now().Add(delay)}
		}
		if err != nil {
			close(ch)
			<-wrote
			return
		}
	}
}

// pipePackets copies MQTT packets from src (the target) to dst (the
// client), dropping PUBACKs while DropPubacks is on.
func (p *Proxy) pipePackets(dst, src net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	r := bufio.NewReader(src)
	for {
		first, err := r.ReadByte()
		if err != nil {
			return
		}
		hdr := []byte{first}
		n, mul := 0, 1
		for {
			b, err := r.ReadByte()
			if err != nil {
				return
			}
			hdr = append(hdr, b)
			n += int(b&0x7f) * mul
			mul *= 128
			if b&0x80 == 0 || len(hdr) > 5 {
				break
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		p.mu.Lock()
		drop := p.dropAcks && first>>4 == 4 // PUBACK
		if drop {
			p.dropped++
		}
		p.mu.Unlock()
		if drop {
			continue
		}
		if _, err := dst.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}
