package broker

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/roomd/roomd/wallclock"
)

// trackedListener is a mochi listener that, unlike listeners.Net, waits for
// every connection it handed to the server to finish before the server waits
// on its own client wait group. mochi adds to that wait group inside the
// per-connection goroutine, so a connection accepted just before Close would
// otherwise race with the server's Wait (seen with -race). On Close it stops
// accepting, closes every raw connection still open and waits for their
// handlers to return, and only then lets the server close its clients.
type trackedListener struct {
	id string
	ln net.Listener
	// writeTimeout bounds each write to a client (see deadlineConn).
	writeTimeout time.Duration

	mu         sync.Mutex
	log        *slog.Logger
	closed     bool
	serving    bool
	conns      map[net.Conn]struct{}
	handlers   sync.WaitGroup
	acceptDone chan struct{}
	closeOnce  sync.Once
}

var _ listeners.Listener = (*trackedListener)(nil)

func newTrackedListener(id string, ln net.Listener, writeTimeout time.Duration) *trackedListener {
	return &trackedListener{
		id:           id,
		ln:           ln,
		writeTimeout: writeTimeout,
		log:          slog.New(slog.DiscardHandler),
		conns:        make(map[net.Conn]struct{}),
		acceptDone:   make(chan struct{}),
	}
}

func (l *trackedListener) ID() string       { return l.id }
func (l *trackedListener) Address() string  { return l.ln.Addr().String() }
func (l *trackedListener) Protocol() string { return l.ln.Addr().Network() }

func (l *trackedListener) Init(log *slog.Logger) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if log != nil {
		l.log = log
	}
	return nil
}

// Serve accepts connections until the listener is closed.
func (l *trackedListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.serving = true
	log := l.log
	l.mu.Unlock()
	defer close(l.acceptDone)

	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed, or a fatal accept error
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.handlers.Add(1)
		l.mu.Unlock()

		go func() {
			defer l.handlers.Done()
			if err := establish(l.id, deadlineConn{Conn: c, timeout: l.writeTimeout}); err != nil {
				log.Debug("client connection ended", "remote", c.RemoteAddr().String(), "error", err)
			}
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// Close stops accepting, drops open connections, waits for their handlers
// and then calls closeClients for the server's own bookkeeping.
func (l *trackedListener) Close(closeClients listeners.CloseFn) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		serving := l.serving
		l.mu.Unlock()

		_ = l.ln.Close()
		if serving {
			<-l.acceptDone
		}

		l.mu.Lock()
		open := make([]net.Conn, 0, len(l.conns))
		for c := range l.conns {
			open = append(open, c)
		}
		l.mu.Unlock()
		for _, c := range open {
			_ = c.Close()
		}
		l.handlers.Wait()
		closeClients(l.id)
	})
}

// deadlineConn bounds every write to a client by timeout. mochi writes some
// packets (SUBACK, PUBACK) straight to the client's socket while it processes
// that client's packet, and retainGuard serialises the processing of
// subscriptions and retained publishes across clients: without a bound, one
// client that stops reading would stall every other client's subscriptions
// and retained publishes. A write that times out ends that client's
// connection instead.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(wallclock.Deadline(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
