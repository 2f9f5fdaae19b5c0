package journal

import (
	"fmt"
	"os"
	"slices"
)

// DiskError is what Append returns when the disk refused the entries: they
// are kept in memory (the backlog) under a new epoch and are published from
// there; nothing is lost unless Dropped says so.
type DiskError struct {
	Err error
	// Backlog is how many entries wait in memory for the disk.
	Backlog int
	// Dropped is how many of the oldest backlog entries were dropped, in
	// total, because the backlog was above its bounds.
	Dropped int
}

func (e *DiskError) Error() string {
	s := fmt.Sprintf("journal: entries kept in memory (%d waiting): %v", e.Backlog, e.Err)
	if e.Dropped > 0 {
		s += fmt.Sprintf("; %d dropped above the memory bound", e.Dropped)
	}
	return s
}

func (e *DiskError) Unwrap() error { return e.Err }

// Append adds the entries as one step (or one group of steps): it assigns
// their LSN and epoch and writes them with one write into the file system's
// cache; then they are visible to readers, and the syncer makes them
// durable behind them with one fdatasync for whatever was written since
// the last one (group commit). Append never waits for the disk to sync. A
// process that dies after Append returned leaves the entries in the file
// (the kernel has them); only the system's own death (a power cut) can
// lose what the syncer had not synced yet, and the next Open knows it (a
// new epoch, above the seq reservation: see the package doc).
//
// When the disk refuses them (full, read-only, failing) they are kept in
// memory, visible at once, under a new epoch (their seqs may never be
// written, so they must not share an epoch with entries that later recover
// from disk), and Append returns a *DiskError; every later Append,
// including Append with no entries, first tries to write them. When the
// last background sync failed, Append returns a *DiskError too (the entries
// are written and visible; Backlog is 0). Entries are modified in place
// (LSN, Epoch).
func (j *Journal) Append(es ...*Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if len(es) == 0 && len(j.backlog) == 0 {
		if j.syncErr == nil {
			return nil
		}
		// The last sync failed: try it again now (this is the daemon's
		// retry, never a step's append).
		j.mu.Unlock()
		err := j.syncOnce()
		j.mu.Lock()
		if err != nil {
			return &DiskError{Err: err, Dropped: j.dropped}
		}
		return nil
	}
	j.used = true
	var list []*Entry
	if len(j.backlog) == 0 && j.active != nil && j.activeSize >= j.opt.SegmentBytes && j.latest != nil {
		list = append(list, &Entry{Checkpoint: true, At: j.latestAt, Snapshot: j.latest})
	}
	list = append(list, es...)
	for _, e := range list {
		e.LSN = j.nextLSN
		e.Epoch = j.epoch
		j.nextLSN++
		if e.Snapshot != nil && !e.Checkpoint {
			j.latest, j.latestAt = e.Snapshot, e.At
		}
	}
	for _, e := range list {
		if _, l, ok := e.Seqs(); ok {
			j.seqMax = max(j.seqMax, l)
		}
	}
	if j.seqMax+ReserveBlock/2 > j.want.reserved {
		// Reserve the next block behind the step, before this one runs out.
		j.want.reserved = j.seqMax + ReserveBlock
		j.headDirty = true
		j.kickHead()
	}
	pending := append(slices.Clone(j.backlog), list...)
	err := j.write(pending)
	if err == nil {
		if j.degraded != nil {
			j.log.Info("journal: the disk takes entries again", "written", len(pending))
		}
		if j.degraded != nil {
			j.markClearAt = j.nextLSN - 1
		}
		j.backlog, j.backBytes, j.degraded = nil, 0, nil
		for _, e := range list {
			j.remember(e)
		}
		j.want.epoch = j.epoch
		j.written = j.nextLSN - 1
		j.kickSync()
		if j.activeSize >= j.opt.SegmentBytes && len(j.segs) > 1 {
			j.kickHead() // compaction need not wait for the tick
		}
		j.wake()
		if j.syncErr != nil {
			return &DiskError{Err: j.syncErr, Dropped: j.dropped}
		}
		return nil
	}
	if j.want.degradedFrom == 0 {
		j.want.degradedFrom = pending[0].LSN
		j.setMark(pending[0].LSN)
		j.headDirty = true
		j.kickHead()
	}
	if j.degraded == nil {
		// The first refusal: what follows lives in memory for now, under a
		// seq space of its own.
		j.epoch = NewEpoch()
		for _, e := range list {
			e.Epoch = j.epoch
		}
		j.log.Error("journal: the disk refuses entries; keeping them in memory under a new epoch", "err", err, "epoch", j.epoch)
	}
	j.degraded = err
	for _, e := range list {
		j.backlog = append(j.backlog, e)
		j.backBytes += approxSize(e)
		j.remember(e)
	}
	for len(j.backlog) > 1 && (len(j.backlog) > j.opt.MaxBacklog || j.backBytes > j.opt.MaxBacklogBytes) {
		old := j.backlog[0]
		j.backlog = j.backlog[1:]
		j.backBytes -= approxSize(old)
		j.dropped++
		j.lostBelow = old.LSN + 1
		j.forget(old.LSN)
	}
	j.wake()
	return &DiskError{Err: err, Backlog: len(j.backlog), Dropped: j.dropped}
}

func approxSize(e *Entry) int64 {
	n := int64(entryOverhead + 256*len(e.Records) + 128*len(e.Replies))
	if e.Snapshot != nil {
		n += 2048
	}
	for _, m := range e.Messages {
		n += int64(len(m.Payload) + len(m.Topic))
	}
	return n
}

// write puts list into the active segment with one write (not synced: the
// syncer does that) and indexes it. A checkpoint first in the list opens a
// new segment. On failure nothing is indexed and the active segment is cut
// back to its previous size.
func (j *Journal) write(list []*Entry) error {
	j.buf = j.buf[:0]
	sizes := make([]int, len(list))
	hdrs := make([]header, len(list))
	for i, e := range list {
		n := len(j.buf)
		var err error
		if j.buf, hdrs[i], err = appendFrame(j.buf, e); err != nil {
			return err
		}
		sizes[i] = len(j.buf) - n
	}
	newSeg := j.active == nil || list[0].Checkpoint
	var f File
	var seg *segment
	base := j.activeSize
	if newSeg {
		seg = &segment{first: list[0].LSN, path: join(j.dir, segName(list[0].LSN))}
		var err error
		if f, err = j.fsys.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return fmt.Errorf("create %s: %w", seg.path, err)
		}
		base = 0
	} else {
		f, seg = j.active, j.segs[len(j.segs)-1]
	}
	fail := func(err error) error {
		if newSeg {
			_ = f.Close()
			_ = j.fsys.Remove(seg.path)
		} else {
			_ = f.Truncate(base)
		}
		return err
	}
	if _, err := f.WriteAt(j.buf, base); err != nil {
		return fail(fmt.Errorf("write %s: %w", seg.path, err))
	}
	if newSeg {
		j.segs = append(j.segs, seg)
		j.active = f
		seg.r = f
		j.dirtyDir = true
	}
	j.dirty[seg] = f
	off := base
	for i := range list {
		j.idx = append(j.idx, ref{seg: seg, off: off, size: sizes[i], hdr: hdrs[i]})
		off += int64(sizes[i])
	}
	j.activeSize = off
	seg.size = off
	return nil
}

// Epoch returns the epoch of the next entry.
func (j *Journal) Epoch() Epoch {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.epoch
}

// Degraded returns why entries wait in memory, or nil.
func (j *Journal) Degraded() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.degraded
}
