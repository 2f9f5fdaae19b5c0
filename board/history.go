package board

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Update is one message of the board's live stream (Server-Sent Events):
// a tile changed (room), a log line (log), the broker link (link).
type Update struct {
	// ID is "<instance>.<n>": n counts the updates of this board process
	// from 1, instance is random per process, so a browser that resumes
	// with an id of another process gets a fresh snapshot.
	ID    string
	Event string
	Data  []byte
}

// History is the board's ordered history of updates, the last Cap of
// them, and the subscribers that follow it live. A browser that lost its
// stream resumes from the id of the last update it saw (Last-Event-ID):
// if History still holds the updates after it, they are replayed in
// order and nothing is missed; otherwise the browser gets a snapshot.
// Publishing never blocks: a subscriber that does not keep up is dropped
// (its channel closed) and resumes from the history when it reconnects.
type History struct {
	mu       sync.Mutex
	instance string
	next     uint64 // n of the next update
	ring     []Update
	start    int // index in ring of the oldest update
	n        int // updates held
	subs     map[chan Update]struct{}
	subBuf   int
}

// NewHistory keeps the last capacity updates; each subscriber may lag by
// subBuf updates before it is dropped.
func NewHistory(capacity, subBuf int) *History {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &History{instance: hex.EncodeToString(b), next: 1, ring: make([]Update, capacity),
		subs: map[chan Update]struct{}{}, subBuf: subBuf}
}

// Instance is this process's prefix of update ids.
func (h *History) Instance() string { return h.instance }

// Publish appends an update and hands it to every subscriber.
func (h *History) Publish(event string, data []byte) Update {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := Update{ID: h.instance + "." + strconv.FormatUint(h.next, 10), Event: event, Data: data}
	h.next++
	if len(h.ring) > 0 {
		if h.n < len(h.ring) {
			h.ring[(h.start+h.n)%len(h.ring)] = u
			h.n++
		} else {
			h.ring[h.start] = u
			h.start = (h.start + 1) % len(h.ring)
		}
	}
	for ch := range h.subs {
		select {
		case ch <- u:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
	return u
}

// Head returns the id of the latest update ("<instance>.0" before any).
func (h *History) Head() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.instance + "." + strconv.FormatUint(h.next-1, 10)
}

// Subscribe returns the updates after lastID and a channel of the ones to
// come, atomically. ok is false when lastID is empty, of another process,
// or older than the history holds: the caller then sends a snapshot taken
// after Subscribe returned, and skips the updates of the channel up to the
// snapshot's head (Seq).
func (h *History) Subscribe(lastID string) (missed []Update, ch chan Update, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch = make(chan Update, h.subBuf)
	h.subs[ch] = struct{}{}
	n, ok := h.parse(lastID)
	if !ok {
		return nil, ch, false
	}
	if n == h.next-1 {
		return nil, ch, true
	}
	oldest := h.next - uint64(h.n) // n of the oldest update held
	if n+1 < oldest {
		return nil, ch, false
	}
	for i := 0; i < h.n; i++ {
		u := h.ring[(h.start+i)%len(h.ring)]
		if un, _ := h.parse(u.ID); un > n {
			missed = append(missed, u)
		}
	}
	return missed, ch, true
}

// Unsubscribe stops the updates to ch.
func (h *History) Unsubscribe(ch chan Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// Subscribers returns how many streams follow the history.
func (h *History) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// DropAll closes every subscriber's channel (their browsers resume).
func (h *History) DropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *History) parse(id string) (uint64, bool) {
	inst, num, found := strings.Cut(id, ".")
	if !found || inst != h.instance {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n >= h.next {
		return 0, false
	}
	return n, true
}

// String describes the history for logs.
func (h *History) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("history %s: %d updates, %d held, %d subscribers", h.instance, h.next-1, h.n, len(h.subs))
}

// Seq returns n of an update id of this process, and whether it is one.
func (h *History) Seq(id string) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.parse(id)
}
