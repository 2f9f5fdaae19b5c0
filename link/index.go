package link

import (
	"sync"
	"time"
)

// replyKey identifies a command for idempotency: who sent it and its
// request_id. Two operators may use the same request_id without harm.
func replyKey(operator, requestID string) string { return operator + "\x00" + requestID }

// replyIndex keeps the replies of the reply window, by (operator,
// request_id), and the commands still in the room's loop. A command is in
// exactly one of three states: unknown, in flight (its reply is coming), or
// answered (its reply is here); the move from in flight to answered happens
// under one lock, so a redelivery is never applied twice.
type replyIndex struct {
	window time.Duration
	max    int

	mu       sync.Mutex
	byKey    map[string]*indexed
	order    []*indexed // by time of the reply
	inFlight map[string]bool
	evicted  int // replies dropped early because max was reached
}

type indexed struct {
	key     string
	payload []byte
	at      time.Time
	gone    bool
}

func newReplyIndex(window time.Duration, max int) *replyIndex {
	return &replyIndex{window: window, max: max, byKey: map[string]*indexed{}, inFlight: map[string]bool{}}
}

// claim looks key up at now. It returns the stored reply if there is one
// inside the window; else, if the command is in flight, dup true; else it
// marks it in flight and returns neither (the caller applies it, or calls
// release). The window is judged here, at lookup, so a reply past it is
// never served even if expire has not run since.
func (x *replyIndex) claim(key string, now time.Time) (reply []byte, dup bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.byKey[key]; ok {
		if !e.at.Before(now.Add(-x.window)) {
			return e.payload, false
		}
		delete(x.byKey, key)
		e.gone = true
	}
	if x.inFlight[key] {
		return nil, true
	}
	x.inFlight[key] = true
	return nil, false
}

// release forgets an in-flight mark of a command that was not applied.
func (x *replyIndex) release(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.inFlight, key)
}

// put stores the reply of key, answered at at, and clears its in-flight mark.
func (x *replyIndex) put(key string, payload []byte, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.inFlight, key)
	if old, ok := x.byKey[key]; ok {
		old.gone = true
	}
	e := &indexed{key: key, payload: payload, at: at}
	x.byKey[key] = e
	x.order = append(x.order, e)
	for len(x.byKey) > x.max {
		x.evicted++
		x.dropOldest()
	}
}

// expire drops the replies older than the window at now.
func (x *replyIndex) expire(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	cutoff := now.Add(-x.window)
	for len(x.order) > 0 && (x.order[0].gone || x.order[0].at.Before(cutoff)) {
		x.dropOldest()
	}
}

func (x *replyIndex) dropOldest() {
	e := x.order[0]
	x.order = x.order[1:]
	if !e.gone && x.byKey[e.key] == e {
		delete(x.byKey, e.key)
	}
}

// Len returns the number of replies held.
func (x *replyIndex) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey)
}
