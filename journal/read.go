package journal

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/roomd/roomd/controller"
)

// remember keeps a decoded entry for readers, bounded.
func (j *Journal) remember(e *Entry) {
	if _, ok := j.cache[e.LSN]; ok {
		return
	}
	j.cache[e.LSN] = e
	j.cacheQ = append(j.cacheQ, e.LSN)
	for len(j.cacheQ) > j.opt.Cache {
		old := j.cacheQ[0]
		j.cacheQ = j.cacheQ[1:]
		if !j.inBacklog(old) {
			delete(j.cache, old)
		}
	}
}

func (j *Journal) forget(lsn uint64) { delete(j.cache, lsn) }

func (j *Journal) inBacklog(lsn uint64) bool {
	return len(j.backlog) > 0 && lsn >= j.backlog[0].LSN
}

// wake tells readers that entries became visible.
func (j *Journal) wake() {
	close(j.notify)
	j.notify = make(chan struct{})
}

// Changed returns a channel closed when entries become visible or the
// acknowledgement position moves after the call, or the journal closes.
func (j *Journal) Changed() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.notify
}

// Last returns the LSN of the newest visible entry (0 if none).
func (j *Journal) Last() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextLSN - 1
}

// First returns the LSN of the oldest entry still kept.
func (j *Journal) First() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.firstLSN()
}

func (j *Journal) firstLSN() uint64 {
	if len(j.idx) > 0 {
		return j.idx[0].hdr.lsn
	}
	if len(j.backlog) > 0 {
		return j.backlog[0].LSN
	}
	return j.nextLSN
}

// Latest returns the latest snapshot appended (or recovered) and the time of
// its step; nil when the room has none yet.
func (j *Journal) Latest() (*controller.Snapshot, time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.latest, j.latestAt
}

// Get returns entry lsn. ErrCompacted: it was deleted by compaction;
// ErrLost: it was lost; an error wrapping fs errors: it cannot be read.
func (j *Journal) Get(lsn uint64) (*Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	if e, ok := j.cache[lsn]; ok {
		return e, nil
	}
	if lsn >= j.nextLSN || lsn == 0 {
		return nil, fmt.Errorf("journal entry %d: not written yet", lsn)
	}
	if len(j.backlog) > 0 && lsn >= j.backlog[0].LSN {
		return j.backlog[lsn-j.backlog[0].LSN], nil
	}
	i, ok := j.find(lsn)
	if !ok {
		switch {
		case lsn < j.lostBelow && (len(j.idx) == 0 || lsn > j.idx[len(j.idx)-1].hdr.lsn):
			return nil, fmt.Errorf("journal entry %d: dropped from memory: %w", lsn, ErrLost)
		case len(j.idx) == 0 || lsn < j.idx[0].hdr.lsn:
			return nil, fmt.Errorf("journal entry %d: %w", lsn, ErrCompacted)
		default:
			return nil, fmt.Errorf("journal entry %d: %w", lsn, ErrLost)
		}
	}
	if j.idx[i].hdr.has(flagLost) {
		return nil, fmt.Errorf("journal entry %d: %w", lsn, ErrLost)
	}
	e, err := j.readRef(j.idx[i])
	if err != nil {
		return nil, err
	}
	j.remember(e)
	return e, nil
}

// find returns the index in j.idx of entry lsn.
func (j *Journal) find(lsn uint64) (int, bool) {
	return slices.BinarySearchFunc(j.idx, lsn, func(r ref, l uint64) int {
		switch {
		case r.hdr.lsn < l:
			return -1
		case r.hdr.lsn > l:
			return 1
		}
		return 0
	})
}

func (j *Journal) readRef(r ref) (*Entry, error) {
	if r.seg.r == nil {
		f, err := j.fsys.OpenFile(r.seg.path, os.O_RDONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("read journal entry %d: %w", r.hdr.lsn, err)
		}
		r.seg.r = f
	}
	b := make([]byte, r.size)
	if _, err := r.seg.r.ReadAt(b, r.off); err != nil {
		return nil, fmt.Errorf("read journal entry %d: %w", r.hdr.lsn, err)
	}
	h, js, _, err := readFrame(b)
	if err != nil {
		return nil, fmt.Errorf("read journal entry %d: %w", r.hdr.lsn, err)
	}
	return decodeEntry(h, js)
}

// SnapshotAt returns the snapshot in force after entry lsn (the latest
// entry at or before it that carries one), or nil if none is kept.
func (j *Journal) SnapshotAt(lsn uint64) *controller.Snapshot {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.snapshotBefore(lsn)
}

func (j *Journal) snapshotBefore(lsn uint64) *controller.Snapshot {
	for i := len(j.backlog) - 1; i >= 0; i-- {
		if e := j.backlog[i]; e.LSN <= lsn && e.Snapshot != nil {
			return e.Snapshot
		}
	}
	i, ok := j.find(lsn)
	if !ok {
		i-- // the entry before where lsn would be
	}
	for ; i >= 0 && i < len(j.idx); i-- {
		r := j.idx[i]
		if !r.hdr.has(flagSnapshot) {
			continue
		}
		if e, ok := j.cache[r.hdr.lsn]; ok {
			return e.Snapshot
		}
		if e, err := j.readRef(r); err == nil && e.Snapshot != nil {
			return e.Snapshot
		}
	}
	return nil
}

// SeqRange returns the first and last seq of epoch ep still kept, and false
// if none is.
func (j *Journal) SeqRange(ep Epoch) (first, last uint64, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.idx {
		if r.hdr.epoch == ep && r.hdr.seqFirst != 0 {
			first, last, ok = widen(first, last, ok, r.hdr.seqFirst)
			first, last, ok = widen(first, last, ok, r.hdr.seqLast)
		}
	}
	for _, e := range j.backlog {
		if f, l, has := e.Seqs(); has && e.Epoch == ep {
			first, last, ok = widen(first, last, ok, f)
			first, last, ok = widen(first, last, ok, l)
		}
	}
	return first, last, ok
}

// EntriesWithSeqs returns, in order, the LSNs of the entries of epoch ep
// whose records fall in [from, to].
func (j *Journal) EntriesWithSeqs(ep Epoch, from, to uint64) []uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []uint64
	for _, r := range j.idx {
		if r.hdr.epoch == ep && r.hdr.seqFirst != 0 && r.hdr.seqLast >= from && r.hdr.seqFirst <= to {
			out = append(out, r.hdr.lsn)
		}
	}
	for _, e := range j.backlog {
		if f, l, has := e.Seqs(); has && e.Epoch == ep && l >= from && f <= to {
			out = append(out, e.LSN)
		}
	}
	return out
}

// Since returns, in order, the LSNs of the entries kept (on disk or in the
// backlog) whose step time is at or after t. The snapshot in force before
// the first of them is the caller's to find (SnapshotAt of the LSN before).
func (j *Journal) Since(t time.Time) []uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []uint64
	for _, r := range j.idx {
		if !r.hdr.at.Before(t) {
			out = append(out, r.hdr.lsn)
		}
	}
	for _, e := range j.backlog {
		if !e.At.Before(t) {
			out = append(out, e.LSN)
		}
	}
	return out
}
