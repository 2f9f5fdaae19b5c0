// Package broker runs an embedded MQTT broker (mochi-mqtt) for the demo and
// for hermetic tests.
//
// The broker accepts every client without authentication and grants every
// topic, so it listens on loopback only unless Options.AllowNonLoopback is set.
// It keeps sessions of clients that connect with clean session false, retains
// messages, delivers QoS 1 and publishes last wills. Nothing is persisted to
// disk: sessions and retained messages live as long as the Broker does.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
)

// DefaultAddr is the address used when Options.Addr is empty: loopback, with
// a port chosen by the kernel.
const DefaultAddr = "127.0.0.1:0"

// Options configures Start. The zero value is valid.
type Options struct {
	// Addr is the TCP host:port to listen on; empty means DefaultAddr.
	// A host that does not resolve to loopback is refused unless
	// AllowNonLoopback is true.
	Addr string
	// AllowNonLoopback permits listening on a non-loopback address. The
	// broker has no authentication, so this is for trusted networks only.
	AllowNonLoopback bool
	// Logger receives the broker's own log lines, all at debug level.
	// Nil discards them.
	Logger *slog.Logger
	// Listener, if not nil, is served in place of listening on Addr (Addr
	// and AllowNonLoopback are then ignored); Close closes it. For
	// in-process use and tests, e.g. a listener whose Accept returns one end
	// of a net.Pipe.
	Listener net.Listener
	// WriteTimeout bounds each write to a client; a client that does not
	// read for that long is disconnected. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// DefaultWriteTimeout is the write bound of Options.WriteTimeout's zero
// value.
const DefaultWriteTimeout = 10 * time.Second

// Broker is a running embedded broker. Close stops it.
type Broker struct {
	srv       *mqtt.Server
	ln        net.Listener
	addr      string
	closeOnce sync.Once
	closeErr  error
}

// Start listens on opts.Addr (or takes opts.Listener) and serves MQTT until
// Close. The listener is bound when Start returns, so clients may connect at
// once.
func Start(opts Options) (*Broker, error) {
	ln, err := listen(opts)
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	logger := slog.New(debugHandler{next: discardIfNil(opts.Logger).Handler()})

	caps := mqtt.NewDefaultServerCapabilities()
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       logger,
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start broker on %s: add allow-all hook: %w", addr, err)
	}
	wt := opts.WriteTimeout
	if wt <= 0 {
		wt = DefaultWriteTimeout
	}
	if err := srv.AddHook(newTakeoverGuard(srv.Clients, caps.TopicAliasMaximum, wt), nil); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start broker on %s: add takeover guard: %w", addr, err)
	}
	if err := srv.AddHook(&retainGuard{topicAliasMax: caps.TopicAliasMaximum}, nil); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start broker on %s: add retain guard: %w", addr, err)
	}
	if err := srv.AddListener(newTrackedListener("tcp", ln, wt)); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start broker on %s: add listener: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start broker on %s: serve: %w", addr, err)
	}
	return &Broker{srv: srv, ln: ln, addr: ln.Addr().String()}, nil
}

// listen returns opts.Listener or a new TCP listener on opts.Addr.
func listen(opts Options) (net.Listener, error) {
	if opts.Listener != nil {
		return opts.Listener, nil
	}
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	if !opts.AllowNonLoopback {
		if err := checkLoopback(addr); err != nil {
			return nil, fmt.Errorf("start broker on %s: %w", addr, err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start broker: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Addr returns the host:port actually bound, e.g. "127.0.0.1:41234".
func (b *Broker) Addr() string { return b.addr }

// URL returns the broker URL for paho, e.g. "tcp://127.0.0.1:41234".
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close disconnects all clients and stops listening. Clients that set a last
// will see it published to the remaining subscribers, which are being
// disconnected too, so wills are not observable after Close. Close is safe
// to call more than once; later calls return the first result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if err := b.srv.Close(); err != nil {
			b.closeErr = fmt.Errorf("close broker %s: %w", b.addr, err)
		}
	})
	return b.closeErr
}

// checkLoopback returns an error unless host in addr is a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parse address: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("host %q is not an IP address or localhost; set AllowNonLoopback to listen elsewhere", host)
	}
	if !ip.IsLoopback() {
		return fmt.Errorf("%w: %s", ErrNotLoopback, host)
	}
	return nil
}

// ErrNotLoopback is returned by Start for a non-loopback address when
// Options.AllowNonLoopback is false.
var ErrNotLoopback = errors.New("address is not loopback (set AllowNonLoopback to allow it)")

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// debugHandler lowers every record to debug level before passing it on, so
// the broker's chatter stays out of info-level logs.
type debugHandler struct{ next slog.Handler }

func (h debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.next.Enabled(ctx, slog.LevelDebug)
}

func (h debugHandler) Handle(ctx context.Context, r slog.Record) error {
	d := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	d.AddAttrs(slog.String("component", "mqtt-broker"), slog.String("broker_level", r.Level.String()))
	r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
	return h.next.Handle(ctx, d)
}

func (h debugHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return debugHandler{next: h.next.WithAttrs(as)}
}

func (h debugHandler) WithGroup(name string) slog.Handler {
	return debugHandler{next: h.next.WithGroup(name)}
}
