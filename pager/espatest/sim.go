// Package espatest is a simulated paging system for tests: the other end
// of an ESPA 4.4.4 line. It is written apart from package espa on purpose
// (it imports nothing of it): it decodes every frame itself, checks each
// block's check character, answers as the specification says, and can go
// silent, refuse, or corrupt what it receives, so that a test checks
// roompager against a second reading of the specification rather than
// against itself.
//
// The reading it follows: the control station polls with EOT and
// "<address> ENQ"; a station with nothing to say answers EOT; a station
// that polled itself ("1 ENQ") and then names this one ("2 ENQ") has
// selected it, and gets ACK when it may send. A block is SOH, a header,
// STX, records "id US data" separated by RS, ETX and a BCC, the XOR of
// every byte after SOH up to ETX; a good block is answered ACK, a bad one
// NAK; EOT ends the transaction.
package espatest

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/wallclock"
)

const (
	cSOH = 0x01
	cSTX = 0x02
	cETX = 0x03
	cEOT = 0x04
	cENQ = 0x05
	cACK = 0x06
	cNAK = 0x15
	cRS  = 0x1E
	cUS  = 0x1F
)

// Call is a block the simulated paging system accepted.
type Call struct {
	Header   string
	Records  map[string]string // data identifier -> data
	Address  string            // record 1
	Message  string            // record 2
	Priority string            // record 6
	At       time.Time
	Raw      []byte // SOH to BCC
}

// Sim is the paging system on one end of a line.
type Sim struct {
	rw   io.ReadWriter
	addr byte // its own address, '2'

	mu       sync.Mutex
	silent   bool
	corrupt  int // corrupt the next n blocks received
	refuse   int // refuse (NAK) the next n selections
	calls    []Call
	polls    int
	naks     int
	badBCC   int
	captured []byte // every byte received, for an outside decoder
	status   []string
	changed  chan struct{}
	done     chan struct{}
}

// Start runs a paging system with address '2' on rw (the master side of
// a pseudo-terminal pair) until rw is closed.
func Start(rw io.ReadWriter) *Sim {
	s := &Sim{rw: rw, addr: '2', changed: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Done is closed when the line was closed.
func (s *Sim) Done() <-chan struct{} { return s.done }

// SetSilent makes the paging system deaf (it still drains the line, as a
// switched-off receiver does) or brings it back.
func (s *Sim) SetSilent(on bool) { s.mu.Lock(); s.silent = on; s.mu.Unlock() }

// CorruptNext flips a bit in the next n blocks as they are received, as
// line noise would: each fails its BCC and is answered NAK.
func (s *Sim) CorruptNext(n int) { s.mu.Lock(); s.corrupt = n; s.mu.Unlock() }

// RefuseNext answers the next n selections NAK (not ready).
func (s *Sim) RefuseNext(n int) { s.mu.Lock(); s.refuse = n; s.mu.Unlock() }

// SendStatus has the paging system send a status information block
// (header 2) with record 7 (call status) = text at the next poll.
func (s *Sim) SendStatus(text string) { s.mu.Lock(); s.status = append(s.status, text); s.mu.Unlock() }

// Calls returns the blocks accepted so far.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Polls is how many polls were answered.
func (s *Sim) Polls() int { s.mu.Lock(); defer s.mu.Unlock(); return s.polls }

// BadBlocks is how many blocks failed their BCC (and were answered NAK).
func (s *Sim) BadBlocks() int { s.mu.Lock(); defer s.mu.Unlock(); return s.badBCC }

// Captured returns every byte received from the control station.
func (s *Sim) Captured() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.captured...)
}

// Changed returns a channel closed at the next change (a call, a poll).
func (s *Sim) Changed() <-chan struct{} { s.mu.Lock(); defer s.mu.Unlock(); return s.changed }

func (s *Sim) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitCalls waits until n calls were accepted or timeout passes, and
// returns the calls.
func (s *Sim) WaitCalls(n int, timeout time.Duration) []Call {
	return s.Wait(timeout, func() bool { return len(s.calls) >= n })
}

// Wait waits until cond (called with the lock held) holds or timeout
// passes, and returns the calls.
func (s *Sim) Wait(timeout time.Duration, cond func() bool) []Call {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return s.Calls()
		}
		select {
		case <-ch:
		case <-t.C:
			return s.Calls()
		case <-s.done:
			return s.Calls()
		}
	}
}

// Locked runs f with the lock held (for conditions over Polls and such).
func (s *Sim) Locked(f func()) { s.mu.Lock(); f(); s.mu.Unlock() }

// PollsLocked is Polls for a Wait condition (the lock is held).
func (s *Sim) PollsLocked() int { return s.polls }

func (s *Sim) send(b ...byte) { _, _ = s.rw.Write(b) }

func (s *Sim) run() {
	defer close(s.done)
	r := bufio.NewReader(s.rw)
	var prev byte       // the byte before the current one
	selfPolled := false // the control station polled itself: the next "2 ENQ" selects us
	selected := false   // selected: a block may come
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.captured = append(s.captured, b)
		silent := s.silent
		s.mu.Unlock()
		if silent {
			selfPolled, selected = false, false
			prev = b
			continue
		}
		switch {
		case b == cEOT:
			selfPolled, selected = false, false
		case b == cENQ && prev >= '0' && prev <= '9' && prev != s.addr:
			selfPolled = true // a station polled itself (or another): it is temporary master
		case b == cENQ && prev == s.addr && selfPolled:
			s.mu.Lock()
			refuse := s.refuse > 0
			if refuse {
				s.refuse--
				s.naks++
			}
			s.mu.Unlock()
			if refuse {
				s.send(cNAK)
			} else {
				selected = true
				s.send(cACK)
			}
		case b == cENQ && prev == s.addr:
			s.poll(r)
		case b == cSOH && selected:
			s.block(r)
		}
		prev = b
	}
}

// poll answers a poll: EOT, or a status block when one is queued.
func (s *Sim) poll(r *bufio.Reader) {
	s.mu.Lock()
	s.polls++
	var status string
	has := len(s.status) > 0
	if has {
		status, s.status = s.status[0], s.status[1:]
	}
	s.notify()
	s.mu.Unlock()
	if !has {
		s.send(cEOT)
		return
	}
	s.send('1', cENQ) // select the control station
	if b, err := r.ReadByte(); err != nil || b != cACK {
		s.send(cEOT)
		return
	}
	body := []byte{'2', cSTX}
	body = append(body, "7"...)
	body = append(body, cUS)
	body = append(body, status...)
	body = append(body, cETX)
	var x byte
	for _, c := range body {
		x ^= c
	}
	s.send(append(append([]byte{cSOH}, body...), x)...)
	_, _ = r.ReadByte() // ACK
	s.send(cEOT)
}

// block reads a block after SOH, checks its BCC and answers.
func (s *Sim) block(r *bufio.Reader) {
	raw := []byte{cSOH}
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		raw = append(raw, b)
		if b == cETX {
			break
		}
		if len(raw) > 1024 {
			s.send(cNAK)
			return
		}
	}
	bcc, err := r.ReadByte()
	if err != nil {
		return
	}
	raw = append(raw, bcc)
	s.mu.Lock()
	s.captured = append(s.captured, raw[1:]...)
	if s.corrupt > 0 {
		s.corrupt--
		raw[3] ^= 0x04 // a bit lost on the line, inside the records
	}
	s.mu.Unlock()
	var x byte
	for _, c := range raw[1 : len(raw)-1] {
		x ^= c
	}
	if x != bcc {
		s.mu.Lock()
		s.badBCC++
		s.notify()
		s.mu.Unlock()
		s.send(cNAK)
		return
	}
	c, ok := parse(raw)
	if !ok {
		s.send(cNAK)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.notify()
	s.mu.Unlock()
	s.send(cACK)
}

func parse(raw []byte) (Call, bool) {
	text := string(raw[1 : len(raw)-2]) // header STX records
	i := strings.IndexByte(text, cSTX)
	if i != 1 {
		return Call{}, false
	}
	c := Call{Header: text[:1], Records: map[string]string{}, At: wallclock.Now(), Raw: raw}
	for _, rec := range strings.Split(text[2:], string(rune(cRS))) {
		id, data, ok := strings.Cut(rec, string(rune(cUS)))
		if !ok {
			return Call{}, false
		}
		c.Records[id] = data
	}
	c.Address, c.Message, c.Priority = c.Records["1"], c.Records["2"], c.Records["6"]
	return c, true
}
