package roomclient

import "sort"

// Tracker deduplicates a stream of records by (room, epoch, seq) and finds
// the seqs that never came. It does no I/O and reads no clock: feed it
// every record (Observe) and every state (ObserveState) in the order they
// arrive, and act on what it returns. The Client runs one when
// Options.OnRecord is set; use your own to keep the marks in your
// database.
//
// Within an epoch a room numbers its records 1, 2, 3, ... without holes and
// publishes them in that order, at least once. So, per room and epoch:
//   - a seq at or below the highest seen, and not missing, is a duplicate;
//   - the next seq is new;
//   - a seq beyond the next is new and opens a gap: the seqs between are
//     missing until a replay (or a late copy) brings them;
//   - a state carries the seq of the latest record; a state above the
//     highest seen record means the records up to it are missing (the
//     state is never published before its record).
//
// A record of an epoch the room has not used before starts gap detection
// afresh at that record (NewEpoch): the room lost its journal and cannot
// say which seqs it handed out, and seqs of the new epoch may repeat
// numbers of the old one. Records of the new epoch published before the
// first one seen are not detected as missing; read the room's state to
// reconcile. A few earlier epochs are remembered, so that late copies of
// their records are still recognised.
type Tracker struct {
	rooms map[string]*roomTrack
	// MaxRanges bounds the missing ranges kept per room and epoch (default
	// 1024); beyond it the oldest range is given up (Observation.Dropped).
	MaxRanges int
}

// keptEpochs is how many epochs of a room the tracker remembers.
const keptEpochs = 4

// Mark is where a consumer stands in a room's records: the epoch and the
// highest seq seen of it. Keep it with what you did with the record, and
// hand it back to Resume after a restart: the records after it that are
// not redelivered are then found missing.
type Mark struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Range is the seqs From to To, both included.
type Range struct {
	From uint64 `json:"from_seq"`
	To   uint64 `json:"to_seq"`
}

// Gap is a range of seqs of a room's epoch that did not come.
type Gap struct {
	Room  string
	Epoch string
	Range
}

// Verdict says what a record is to the tracker.
type Verdict uint8

// The verdicts.
const (
	// New: the first copy of this record.
	New Verdict = iota + 1
	// Filled: the first copy of a record that was missing (a replay
	// brought it, or a copy arrived late).
	Filled
	// Duplicate: this record was seen before; drop it.
	Duplicate
)

func (v Verdict) String() string {
	switch v {
	case New:
		return "new"
	case Filled:
		return "filled"
	case Duplicate:
		return "duplicate"
	default:
		return "verdict(?)"
	}
}

// Observation is what the tracker learnt from one record or state.
type Observation struct {
	Verdict Verdict // zero for a state
	// NewEpoch: the record opened an epoch the room had not used; the
	// room had records of PrevEpoch before.
	NewEpoch  bool
	PrevEpoch string
	// Gap, if not nil, is the range this observation found missing.
	Gap *Gap
	// Dropped, if not nil, is a missing range given up to bound memory.
	Dropped *Gap
}

type roomTrack struct {
	epochs []*epochTrack // the current epoch last
}

type epochTrack struct {
	epoch   string
	high    uint64
	missing []Range // sorted, disjoint, within [1, high]
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{rooms: map[string]*roomTrack{}} }

func (t *Tracker) maxRanges() int {
	if t.MaxRanges <= 0 {
		return 1024
	}
	return t.MaxRanges
}

// Resume sets where the consumer stood in room's records (a Mark it kept).
// Call it before the first record of the room.
func (t *Tracker) Resume(room string, m Mark) {
	t.rooms[room] = &roomTrack{epochs: []*epochTrack{{epoch: m.Epoch, high: m.Seq}}}
}

// Marks returns, per room, the current epoch and the highest seq seen.
func (t *Tracker) Marks() map[string]Mark {
	out := make(map[string]Mark, len(t.rooms))
	for room, r := range t.rooms {
		cur := r.epochs[len(r.epochs)-1]
		out[room] = Mark{Epoch: cur.epoch, Seq: cur.high}
	}
	return out
}

// Missing returns the gaps of every room still open, by room, then epoch
// (oldest first), then seq.
func (t *Tracker) Missing() []Gap {
	var out []Gap
	rooms := make([]string, 0, len(t.rooms))
	for room := range t.rooms {
		rooms = append(rooms, room)
	}
	sort.Strings(rooms)
	for _, room := range rooms {
		for _, e := range t.rooms[room].epochs {
			for _, r := range e.missing {
				out = append(out, Gap{Room: room, Epoch: e.epoch, Range: r})
			}
		}
	}
	return out
}

// Forget gives up the missing seqs of g (the room cannot replay them).
func (t *Tracker) Forget(g Gap) {
	if e := t.find(g.Room, g.Epoch); e != nil {
		e.remove(g.Range)
	}
}

// IsMissing reports whether seq of room's epoch is missing.
func (t *Tracker) IsMissing(room, epoch string, seq uint64) bool {
	e := t.find(room, epoch)
	if e == nil {
		return false
	}
	_, ok := e.indexOf(seq)
	return ok
}

func (t *Tracker) find(room, epoch string) *epochTrack {
	r := t.rooms[room]
	if r == nil {
		return nil
	}
	for _, e := range r.epochs {
		if e.epoch == epoch {
			return e
		}
	}
	return nil
}

// Observe takes one record, identified by room, epoch and seq (seq 0 is
// not a record and counts as a duplicate).
func (t *Tracker) Observe(room, epoch string, seq uint64) Observation {
	if seq == 0 {
		return Observation{Verdict: Duplicate}
	}
	if t.rooms == nil {
		t.rooms = map[string]*roomTrack{}
	}
	r := t.rooms[room]
	if r == nil {
		t.rooms[room] = &roomTrack{epochs: []*epochTrack{{epoch: epoch, high: seq}}}
		return Observation{Verdict: New}
	}
	e := t.find(room, epoch)
	if e == nil {
		prev := r.epochs[len(r.epochs)-1].epoch
		r.epochs = append(r.epochs, &epochTrack{epoch: epoch, high: seq})
		if len(r.epochs) > keptEpochs {
			r.epochs = r.epochs[1:]
		}
		return Observation{Verdict: New, NewEpoch: true, PrevEpoch: prev}
	}
	switch {
	case seq <= e.high:
		if _, ok := e.indexOf(seq); ok {
			e.remove(Range{seq, seq})
			return Observation{Verdict: Filled}
		}
		return Observation{Verdict: Duplicate}
	case seq == e.high+1:
		e.high = seq
		return Observation{Verdict: New}
	default:
		gap := Range{e.high + 1, seq - 1}
		e.high = seq
		obs := Observation{Verdict: New, Gap: &Gap{Room: room, Epoch: epoch, Range: gap}}
		obs.Dropped = t.add(room, e, gap)
		return obs
	}
}

// ObserveState takes a state of room: its epoch and the seq of the latest
// record it announced. A state of the room's current epoch above the
// highest record seen reveals the records up to it as missing. A state of
// another epoch, or of a room without records yet, says nothing (it may
// have overtaken records still queued for a persistent session).
func (t *Tracker) ObserveState(room, epoch string, seq uint64) Observation {
	r := t.rooms[room]
	if r == nil {
		return Observation{}
	}
	e := r.epochs[len(r.epochs)-1]
	if e.epoch != epoch || seq <= e.high {
		return Observation{}
	}
	gap := Range{e.high + 1, seq}
	e.high = seq
	obs := Observation{Gap: &Gap{Room: room, Epoch: epoch, Range: gap}}
	obs.Dropped = t.add(room, e, gap)
	return obs
}

// add appends a gap above every missing range, dropping the oldest range
// beyond the bound.
func (t *Tracker) add(room string, e *epochTrack, g Range) *Gap {
	e.missing = append(e.missing, g)
	if len(e.missing) <= t.maxRanges() {
		return nil
	}
	d := e.missing[0]
	e.missing = e.missing[1:]
	return &Gap{Room: room, Epoch: e.epoch, Range: d}
}

// indexOf returns the index of the missing range holding seq.
func (e *epochTrack) indexOf(seq uint64) (int, bool) {
	i := sort.Search(len(e.missing), func(i int) bool { return e.missing[i].To >= seq })
	if i < len(e.missing) && e.missing[i].From <= seq {
		return i, true
	}
	return i, false
}

// remove takes the seqs of g out of the missing ranges; it reports whether
// any of them was missing.
func (e *epochTrack) remove(g Range) bool {
	var out []Range
	removed := false
	for _, r := range e.missing {
		if r.To < g.From || r.From > g.To {
			out = append(out, r)
			continue
		}
		removed = true
		if r.From < g.From {
			out = append(out, Range{r.From, g.From - 1})
		}
		if r.To > g.To {
			out = append(out, Range{g.To + 1, r.To})
		}
	}
	if removed {
		e.missing = out
	}
	return removed
}
