package link

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/roomd/roomd/daemon/statefile"
)

// DefaultRepliesCapacity is the number of replies Replies keeps when no
// capacity is given.
const DefaultRepliesCapacity = 1024

// Replies remembers the replies sent for recent request_ids, so that a
// redelivered command (MQTT QoS 1 is at-least-once, and clients retry) gets
// the same reply and is not applied twice. It keeps the most recently used
// capacity entries and, with a path, persists them with statefile.Write after
// every Store so they survive restarts. It is safe for concurrent use.
//
// The daemon's order for each command: id := PeekRequestID(payload, max);
// if reply, ok := Lookup(id) then send reply again and stop; otherwise
// decode, apply, encode, Store(id, reply), then send the reply.
type Replies struct {
	mu       sync.Mutex
	path     string
	capacity int
	order    *list.List // of *replyEntry, most recent at the front
	byID     map[string]*list.Element
}

type replyEntry struct {
	ID    string          `json:"id"`
	Reply json.RawMessage `json:"reply"`
}

type repliesFile struct {
	Version int          `json:"version"`
	Entries []replyEntry `json:"entries"` // oldest first
}

const repliesVersion = 1

// OpenReplies returns a cache of capacity entries (0 means
// DefaultRepliesCapacity) persisted at path; an empty path keeps it in memory
// only. A missing file is an empty cache. A corrupt or unreadable file gives
// an empty, usable cache together with an error (wrapping
// statefile.ErrCorrupt when the file is damaged): redelivered commands may
// then be applied twice, which the caller should report.
func OpenReplies(path string, capacity int) (*Replies, error) {
	if capacity <= 0 {
		capacity = DefaultRepliesCapacity
	}
	r := &Replies{path: path, capacity: capacity, order: list.New(), byID: map[string]*list.Element{}}
	if path == "" {
		return r, nil
	}
	data, err := statefile.Read(path)
	if errors.Is(err, statefile.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("load reply cache %s: %w", path, err)
	}
	var f repliesFile
	if err := json.Unmarshal(data, &f); err != nil {
		return r, fmt.Errorf("load reply cache %s: %w", path, err)
	}
	if f.Version != repliesVersion {
		return r, fmt.Errorf("load reply cache %s: version %d, want %d", path, f.Version, repliesVersion)
	}
	for _, e := range f.Entries {
		r.put(e.ID, e.Reply)
	}
	return r, nil
}

// Lookup returns the reply stored for request id, and marks it recently
// used. The empty id is never found.
func (r *Replies) Lookup(id string) ([]byte, bool) {
	if id == "" {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	r.order.MoveToFront(el)
	return append([]byte(nil), el.Value.(*replyEntry).Reply...), true
}

// Store remembers reply for request id, evicting the least recently used
// entry when full, and persists the cache. The empty id is ignored (a
// command whose request_id cannot be read cannot be recognised again).
// reply must be a JSON document. On a persistence error the entry is kept in
// memory and the error returned.
func (r *Replies) Store(id string, reply []byte) error {
	if id == "" {
		return nil
	}
	if !json.Valid(reply) {
		return fmt.Errorf("store reply for request %q: not a JSON document", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.put(id, append(json.RawMessage(nil), reply...))
	if r.path == "" {
		return nil
	}
	f := repliesFile{Version: repliesVersion, Entries: make([]replyEntry, 0, r.order.Len())}
	for el := r.order.Back(); el != nil; el = el.Prev() {
		f.Entries = append(f.Entries, *el.Value.(*replyEntry))
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("store reply cache %s: %w", r.path, err)
	}
	if err := statefile.Write(r.path, data); err != nil {
		return fmt.Errorf("store reply cache %s: %w", r.path, err)
	}
	return nil
}

// Len returns the number of replies held.
func (r *Replies) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

func (r *Replies) put(id string, reply json.RawMessage) {
	if el, ok := r.byID[id]; ok {
		el.Value.(*replyEntry).Reply = reply
		r.order.MoveToFront(el)
		return
	}
	r.byID[id] = r.order.PushFront(&replyEntry{ID: id, Reply: reply})
	for r.order.Len() > r.capacity {
		old := r.order.Back()
		r.order.Remove(old)
		delete(r.byID, old.Value.(*replyEntry).ID)
	}
}
