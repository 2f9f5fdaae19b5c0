package espa

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// Port is the serial line to the paging system: bytes both ways, and
// deadlines so that no exchange waits for ever. A tty opened by OpenSerial
// and either side of a pseudo-terminal pair (*os.File) are Ports.
type Port interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Config is how the station behaves on the line.
type Config struct {
	// Own is this station's address, Peer the paging system's: '0' to '9'.
	// Where only two stations are connected [G 3.1] recommends '1' for
	// the telephone (here: roompager) and '2' for the paging system.
	Own, Peer byte
	// ReplyTimeout is how long the station waits for an answer to a poll,
	// a selection or a block (default 1s).
	ReplyTimeout time.Duration
	// BlockTimeout is how long a block the paging system sends may take
	// from SOH to its BCC (default 3s).
	BlockTimeout time.Duration
	// Tries is how often a selection or a block is sent before the call
	// is given up, the first time included (default 3).
	Tries int
}

// The defaults of Config.
const (
	DefaultReplyTimeout = time.Second
	DefaultBlockTimeout = 3 * time.Second
	DefaultTries        = 3
)

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Own == 0 {
		c.Own = '1'
	}
	if c.Peer == 0 {
		c.Peer = '2'
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = DefaultBlockTimeout
	}
	if c.Tries <= 0 {
		c.Tries = DefaultTries
	}
	return c
}

// Validate names what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Own < '0' || c.Own > '9':
		return fmt.Errorf("own address %q: want one digit", c.Own)
	case c.Peer < '0' || c.Peer > '9':
		return fmt.Errorf("paging system address %q: want one digit", c.Peer)
	case c.Own == c.Peer:
		return fmt.Errorf("own address and paging system address are both %q", c.Own)
	}
	return nil
}

// Errors of an exchange; each is wrapped with the operation that failed.
var (
	// ErrNoAnswer: nothing (or nothing readable) came back in time.
	ErrNoAnswer = errors.New("no answer")
	// ErrRefused: the paging system answered NAK (or EOT) every time.
	ErrRefused = errors.New("refused")
)

// Station is the control station of the link. It is not safe for
// concurrent use: one goroutine polls and sends.
type Station struct {
	port Port
	cfg  Config
	log  *slog.Logger
	in   []byte // bytes read and not used yet
	rbuf [256]byte
}

// NewStation returns the control station on port.
func NewStation(port Port, cfg Config, log *slog.Logger) (*Station, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("espa station: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Station{port: port, cfg: cfg, log: log}, nil
}

// Config returns the station's config, defaults filled in.
func (s *Station) Config() Config { return s.cfg }

// errTimeout is a read deadline passed.
var errTimeout = errors.New("timeout")

// readByte returns the next byte before deadline.
func (s *Station) readByte(deadline time.Time) (byte, error) {
	for len(s.in) == 0 {
		if err := s.port.SetReadDeadline(deadline); err != nil {
			return 0, fmt.Errorf("set read deadline: %w", err)
		}
		n, err := s.port.Read(s.rbuf[:])
		s.in = append(s.in, s.rbuf[:n]...)
		if n > 0 {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, errTimeout
		}
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
	}
	b := s.in[0]
	s.in = s.in[1:]
	return b, nil
}

// drain drops what the line sent before this exchange (a late answer to
// an exchange given up), so that it is not taken for an answer to this one.
func (s *Station) drain() error {
	s.in = s.in[:0]
	for {
		_, err := s.readByte(wallclock.Deadline(0))
		if errors.Is(err, errTimeout) {
			s.in = s.in[:0]
			return nil
		}
		if err != nil {
			return err
		}
		s.in = s.in[:0]
	}
}

func (s *Station) write(b ...byte) error {
	if err := s.port.SetWriteDeadline(wallclock.Deadline(s.cfg.ReplyTimeout + 2*time.Second)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := s.port.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// awaitAnswer waits for ACK, NAK or EOT; other bytes (line noise, an echo)
// are skipped.
func (s *Station) awaitAnswer() (byte, error) {
	deadline := wallclock.Deadline(s.cfg.ReplyTimeout)
	for {
		b, err := s.readByte(deadline)
		if err != nil {
			return 0, err
		}
		switch b {
		case ACK, NAK, EOT:
			return b, nil
		}
	}
}

// Poll polls the paging system: EOT, <peer> ENQ [G 3.1]. The paging system
// answers EOT when it has nothing to send; or it selects this station
// (<own> ENQ) and sends a block (status information, typically), which is
// checked, acknowledged and returned. A poll answered in time proves the
// link works.
func (s *Station) Poll() (*Block, error) {
	if err := s.drain(); err != nil {
		return nil, fmt.Errorf("poll paging system %c: %w", s.cfg.Peer, err)
	}
	if err := s.write(EOT, s.cfg.Peer, ENQ); err != nil {
		return nil, fmt.Errorf("poll paging system %c: %w", s.cfg.Peer, err)
	}
	deadline := wallclock.Deadline(s.cfg.ReplyTimeout)
	var prev byte
	for {
		b, err := s.readByte(deadline)
		if errors.Is(err, errTimeout) {
			return nil, fmt.Errorf("poll paging system %c: %w within %v", s.cfg.Peer, ErrNoAnswer, s.cfg.ReplyTimeout)
		}
		if err != nil {
			return nil, fmt.Errorf("poll paging system %c: %w", s.cfg.Peer, err)
		}
		switch {
		case b == EOT:
			return nil, nil
		case b == ENQ && prev == s.cfg.Own:
			blk, err := s.receive()
			if err != nil {
				return nil, fmt.Errorf("poll paging system %c: %w", s.cfg.Peer, err)
			}
			return blk, nil
		}
		prev = b
	}
}

// receive takes a block as the selected slave: ACK the selection, read the
// block, ACK it (or NAK a bad one, up to Tries), then wait for the EOT
// that ends the transaction.
func (s *Station) receive() (*Block, error) {
	if err := s.write(ACK); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		raw, err := s.readBlock()
		if err == nil {
			blk, derr := DecodeBlock(raw)
			if derr == nil {
				if err := s.write(ACK); err != nil {
					return nil, err
				}
				// The temporary master ends with EOT [G 3.3]; a missing
				// one costs nothing: the next poll starts with EOT.
				_, _ = s.awaitAnswer()
				return &blk, nil
			}
			err = derr
		}
		if errors.Is(err, errTimeout) {
			return nil, fmt.Errorf("receive block: %w", ErrNoAnswer)
		}
		if try >= s.cfg.Tries {
			_ = s.write(NAK)
			return nil, fmt.Errorf("receive block: %w", err)
		}
		s.log.Debug("espa: bad block from paging system; NAK", "err", err)
		if err := s.write(NAK); err != nil {
			return nil, err
		}
	}
}

// readBlock reads SOH ... ETX BCC within BlockTimeout.
func (s *Station) readBlock() ([]byte, error) {
	deadline := wallclock.Deadline(s.cfg.BlockTimeout)
	var blk []byte
	for {
		b, err := s.readByte(deadline)
		if err != nil {
			return nil, err
		}
		switch {
		case len(blk) == 0 && b != SOH:
			if b == EOT {
				return nil, fmt.Errorf("read block: %w (EOT instead)", ErrRefused)
			}
			continue
		case len(blk) > 0 && blk[len(blk)-1] == ETX:
			return append(blk, b), nil
		case len(blk) > 2*MaxMessage+64:
			return nil, errors.New("read block: no ETX")
		}
		blk = append(blk, b)
	}
}

// Send hands a call to the paging system. The station polls itself
// (<own> ENQ) and so becomes the temporary master, selects the paging
// system (<peer> ENQ) and waits for its ACK [G 3.2]; then it sends the
// block and waits for ACK, sending it again after a NAK or no answer, at
// most Tries times [A]; EOT ends the transaction either way [G 3.3]. A nil
// error means the paging system acknowledged the block: it took the call.
func (s *Station) Send(c Call) error {
	block, err := EncodeCall(c)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("call %s via paging system %c", c.Address, s.cfg.Peer)
	if err := s.drain(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.selectPeer(); err != nil {
		_ = s.write(EOT)
		return fmt.Errorf("%s: select: %w", op, err)
	}
	var last error
	for try := 1; try <= s.cfg.Tries; try++ {
		if err := s.write(block...); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		ans, err := s.awaitAnswer()
		switch {
		case err == nil && ans == ACK:
			if err := s.write(EOT); err != nil {
				return fmt.Errorf("%s: end: %w", op, err)
			}
			if try > 1 {
				s.log.Info("espa: block taken after a retry", "address", c.Address, "tries", try)
			}
			return nil
		case errors.Is(err, errTimeout):
			last = fmt.Errorf("block: %w within %v", ErrNoAnswer, s.cfg.ReplyTimeout)
		case err != nil:
			return fmt.Errorf("%s: %w", op, err)
		case ans == EOT:
			_ = s.write(EOT)
			return fmt.Errorf("%s: block: %w (EOT)", op, ErrRefused)
		default:
			last = fmt.Errorf("block: %w (NAK)", ErrRefused)
		}
		s.log.Debug("espa: block not acknowledged", "address", c.Address, "try", try, "err", last)
	}
	_ = s.write(EOT)
	return fmt.Errorf("%s: %d tries: %w", op, s.cfg.Tries, last)
}

// selectPeer makes the station temporary master and selects the paging
// system, up to Tries times.
func (s *Station) selectPeer() error {
	var last error
	for try := 1; try <= s.cfg.Tries; try++ {
		if err := s.write(EOT, s.cfg.Own, ENQ, s.cfg.Peer, ENQ); err != nil {
			return err
		}
		ans, err := s.awaitAnswer()
		switch {
		case err == nil && ans == ACK:
			return nil
		case errors.Is(err, errTimeout):
			last = fmt.Errorf("%w within %v", ErrNoAnswer, s.cfg.ReplyTimeout)
		case err != nil:
			return err
		default:
			last = fmt.Errorf("%w (%s)", ErrRefused, name(ans))
		}
	}
	return fmt.Errorf("%d tries: %w", s.cfg.Tries, last)
}

func name(b byte) string {
	switch b {
	case ACK:
		return "ACK"
	case NAK:
		return "NAK"
	case EOT:
		return "EOT"
	}
	return fmt.Sprintf("%#x", b)
}
