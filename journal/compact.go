package journal

import (
	"errors"
	"slices"
	"time"
)

// Unacked returns how many entries and bytes on disk wait for the broker.
func (j *Journal) Unacked() (entries int, bytes int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.idx) - 1; i >= 0 && j.idx[i].hdr.lsn >= j.acked.LSN; i-- {
		entries++
		bytes += int64(j.idx[i].size)
	}
	return entries + len(j.backlog), bytes + j.backBytes
}

// OverLimit reports whether unacknowledged entries alone exceed MaxBytes.
func (j *Journal) OverLimit() bool {
	_, b := j.Unacked()
	return b > j.opt.MaxBytes
}

// Size returns the bytes the journal's segments and its set-aside copies
// take on disk.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.copyBytes
	for _, s := range j.segs {
		n += s.size
	}
	return n
}

// Sync makes every entry appended so far durable, writes the head file if
// it changed, and compacts.
func (j *Journal) Sync() error {
	return errors.Join(j.syncOnce(), j.maintain())
}

// background writes the head and compacts, once per HeadEvery (at once
// when the seq reservation or a refusal mark must reach the head), and
// watches the directory.
func (j *Journal) background() {
	defer close(j.done)
	t := time.NewTicker(HeadEvery)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.watchDir()
			if err := j.maintain(); err != nil {
				j.log.Warn("journal: head write failed; acknowledged messages may be published again after a restart", "err", err)
			}
		case <-j.headKick:
			if err := j.maintain(); err != nil {
				j.log.Warn("journal: head write failed; acknowledged messages may be published again after a restart", "err", err)
			}
		}
	}
}

// maintain writes the head if it changed and deletes segments that are no
// longer needed. The writes happen outside j.mu, so that an append never
// waits for them; only this goroutine (and Close, after it stopped) writes
// the head.
func (j *Journal) maintain() error {
	j.headMu.Lock()
	defer j.headMu.Unlock()
	j.mu.Lock()
	if j.closed && j.head == nil {
		j.mu.Unlock()
		return ErrClosed
	}
	dirty, want, head := j.headDirty, j.want, j.head
	j.headDirty = false
	gone := j.compact()
	j.mu.Unlock()

	var err error
	if dirty && head != nil && head.f != nil {
		if err = head.write(want); err != nil {
			j.mu.Lock()
			j.headDirty = true
			j.mu.Unlock()
		}
	}
	for _, s := range gone {
		if s.r != nil {
			_ = s.r.Close()
		}
		if rerr := j.fsys.Remove(s.path); rerr != nil {
			j.log.Warn("journal: cannot delete an old segment", "path", s.path, "err", rerr)
		}
	}
	if len(gone) > 0 {
		if serr := j.fsys.SyncDir(j.dir); serr != nil {
			j.log.Warn("journal: directory sync after compaction failed", "err", serr)
		}
	}
	return err
}

// compact takes out of the journal the oldest segments that are not
// active, fully acknowledged, older than the retention (or in the way of
// getting under MaxBytes), and followed by a snapshot, and returns them for
// deletion. The caller holds j.mu.
func (j *Journal) compact() []*segment {
	if len(j.segs) < 2 {
		return nil
	}
	cutoff := j.opt.Now().Add(-j.opt.Retention)
	total := j.copyBytes
	for _, s := range j.segs {
		total += s.size
	}
	var gone []*segment
	for len(j.segs) > 1 {
		s := j.segs[0]
		n := 0
		for n < len(j.idx) && j.idx[n].seg == s {
			n++
		}
		if n > 0 {
			last := j.idx[n-1].hdr
			if last.lsn >= j.acked.LSN || last.lsn > j.synced {
				break // not fully acknowledged, or not yet durable
			}
			if !last.at.Before(cutoff) && total <= j.opt.MaxBytes {
				break
			}
			if !j.snapshotAfter(n) {
				break
			}
		}
		for _, r := range j.idx[:n] {
			delete(j.cache, r.hdr.lsn)
		}
		j.idx = slices.Clone(j.idx[n:])
		total -= s.size
		j.segs = j.segs[1:]
		gone = append(gone, s)
	}
	return gone
}

// snapshotAfter reports whether an entry from index i on carries a snapshot.
func (j *Journal) snapshotAfter(i int) bool {
	for ; i < len(j.idx); i++ {
		if j.idx[i].hdr.has(flagSnapshot) {
			return true
		}
	}
	return false
}

// Window is how far back the journal reaches now: the age of its oldest
// kept entry, at most Retention. Replay finds every record, and a
// redelivered command its first reply, from within it. It is shorter than
// Retention in a young journal, and when MaxBytes made compaction delete
// entries inside the retention (the room announces it in info, window_s).
func (j *Journal) Window() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.idx) == 0 || j.idx[0].hdr.lsn <= 1 {
		return j.opt.Retention // nothing was ever deleted
	}
	// Everything since the oldest entry kept is there (a conservative
	// bound: entries between it and the last one deleted may be missing
	// only if they never existed).
	return min(max(j.opt.Now().Sub(j.idx[0].hdr.at), 0), j.opt.Retention)
}

// EntryBytes is a typical size on disk of one step that answers a command
// (its reply and the snapshot after it), for estimates of how long MaxBytes
// lasts (roomd check-config).
const EntryBytes = 1500

// SeqMax is the highest seq the journal knows was handed out (in its
// entries, or its floor).
func (j *Journal) SeqMax() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seqMax
}

// Rebase starts a new epoch before the first Append of this run, with the
// seq floor raised to floor, and writes both to the head at once: the
// journal is behind what the room already announced (a witness outside it,
// the broker's retained state, says so), or could not be checked. With
// stale, every entry already kept counts as acknowledged: its keys may name
// other records at the consumers, so it is never published again. reason
// becomes Recovery.Reason (the journal fault's detail).
func (j *Journal) Rebase(floor uint64, reason, mayHaveLost string, stale bool) error {
	j.mu.Lock()
	j.epoch = NewEpoch()
	j.rec.NewEpoch = true
	j.rec.Reason = reason
	if mayHaveLost != "" {
		j.rec.MayHaveLost = mayHaveLost
	}
	j.rec.SeqFloor = max(j.rec.SeqFloor, floor)
	j.seqMax = max(j.seqMax, floor)
	j.want.floor = max(j.want.floor, floor)
	j.want.epoch = j.epoch
	j.want.reserved = j.seqMax + ReserveBlock
	j.want.hwm = j.synced
	if stale && j.acked.Less(Pos{LSN: j.nextLSN}) {
		j.acked = Pos{LSN: j.nextLSN}
		j.want.acked = j.acked
	}
	j.headDirty = true
	j.mu.Unlock()
	return j.maintain()
}
