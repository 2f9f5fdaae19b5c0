package journal

import (
	"errors"
	"fmt"
	"io/fs"
)

// watchDir notices, at every head tick, a journal directory deleted or
// replaced behind the journal's back (or its active segment deleted):
// writes into deleted files would go on succeeding and vanish with the
// process. It then writes what the journal still holds into a new
// directory (rebuild) and leaves a notice for the daemon's fault.
func (j *Journal) watchDir() {
	if !j.syncMu.TryLock() {
		return // a sync is under way (a slow card); look at the next tick
	}
	defer j.syncMu.Unlock() // no sync of the old files runs meanwhile
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.dirID == (FileID{}) {
		return
	}
	id, err := j.fsys.Ident(j.dir)
	why := ""
	switch {
	case errors.Is(err, fs.ErrNotExist):
		why = "the journal directory was deleted while roomd ran"
	case err != nil:
		return // cannot tell; try again at the next tick
	case id != j.dirID:
		why = "the journal directory was replaced while roomd ran"
	default:
		if n := len(j.segs); n > 0 && j.active != nil {
			if _, err := j.fsys.Ident(j.segs[n-1].path); errors.Is(err, fs.ErrNotExist) {
				why = "the journal's active segment was deleted while roomd ran"
			}
		}
	}
	if why == "" {
		return
	}
	j.log.Error("journal: "+why+"; writing what the room still holds into a new one", "dir", j.dir)
	kept, err := j.rebuild(id, err == nil && id != j.dirID)
	notice := fmt.Sprintf("%s: the room wrote its state and the %d entries not yet delivered into a new journal; older entries (replay, answers to repeated commands) are gone", why, kept)
	if err != nil {
		notice = fmt.Sprintf("%s, and a new one could not be written (%v): steps are kept in memory", why, err)
	}
	j.notices = append(j.notices, notice)
	j.healthChanged()
}

// rebuild writes a new journal in j.dir from what the journal holds: the
// entries not yet acknowledged (read through the files still open, or
// from memory), then a checkpoint with the latest snapshot, and a head with
// the same epoch, reservation and floor, so that the room continues as if
// nothing happened. A directory found in its place is moved aside first.
// The caller holds j.mu.
func (j *Journal) rebuild(found FileID, replaced bool) (int, error) {
	var keep []*Entry
	for _, r := range j.idx {
		if r.hdr.lsn < j.acked.LSN || r.hdr.has(flagLost) {
			continue
		}
		e, ok := j.cache[r.hdr.lsn]
		if !ok {
			var err error
			if e, err = j.readRef(r); err != nil {
				j.log.Warn("journal: an undelivered entry could not be read from the deleted files", "lsn", r.hdr.lsn, "err", err)
				continue
			}
		}
		keep = append(keep, e)
	}
	for _, s := range j.segs {
		if s.r != nil {
			_ = s.r.Close()
			s.r = nil
		}
	}
	if j.head != nil {
		_ = j.head.close()
	}
	j.segs, j.idx, j.active, j.activeSize = nil, nil, nil, 0
	clear(j.dirty)
	j.dirtyDir = false
	j.copyBytes = 0
	if replaced {
		aside := j.dir + ".replaced-" + j.opt.Now().UTC().Format("20060102T150405.000000000Z")
		if err := j.fsys.Rename(j.dir, aside); err != nil {
			return 0, fmt.Errorf("move the replacing directory aside: %w", err)
		}
		j.log.Warn("journal: the directory found in its place was moved aside", "to", aside)
	}
	if err := j.fsys.MkdirAll(j.dir, 0o700); err != nil {
		return 0, fmt.Errorf("create %s: %w", j.dir, err)
	}
	if lock, err := j.fsys.Lock(j.dir); err == nil {
		_ = j.lock.Close()
		j.lock = lock
	} else {
		return 0, fmt.Errorf("lock %s: %w", j.dir, err)
	}
	list := keep
	if j.latest != nil {
		cp := &Entry{LSN: j.nextLSN, Epoch: j.epoch, Checkpoint: true, At: j.latestAt, Snapshot: j.latest}
		j.nextLSN++
		list = append(list, cp)
	}
	list = append(list, j.backlog...)
	if len(list) > 0 {
		if err := j.write(list); err != nil {
			return 0, err
		}
		j.backlog, j.backBytes = nil, 0
	}
	for f := range j.dirty {
		if err := j.dirty[f].Sync(); err != nil {
			return 0, fmt.Errorf("sync the new journal: %w", err)
		}
	}
	clear(j.dirty)
	if err := j.fsys.SyncDir(j.dir); err != nil {
		return 0, fmt.Errorf("sync %s: %w", j.dir, err)
	}
	j.dirtyDir = false
	j.written = j.nextLSN - 1
	j.synced = j.written
	j.want.hwm = j.synced
	j.want.acked = j.acked
	if len(j.idx) > 0 && j.acked.LSN < j.idx[0].hdr.lsn {
		j.acked = Pos{LSN: j.idx[0].hdr.lsn}
		j.want.acked = j.acked
	}
	head, err := openHead(j.fsys, j.dir, j.want, 0)
	j.head = head
	if err != nil {
		return len(keep), err
	}
	if id, err := j.fsys.Ident(j.dir); err == nil {
		j.dirID = id
	}
	for lsn := range j.cache {
		if len(j.idx) == 0 || lsn < j.idx[0].hdr.lsn {
			delete(j.cache, lsn)
		}
	}
	// Everything the journal holds is durable in the new directory.
	j.degraded, j.syncErr, j.syncFailed = nil, nil, false
	j.want.degradedFrom = 0
	return len(keep), nil
}

// Notices returns, once, what the journal noticed while running that the
// room must be told of (a directory deleted or replaced behind it). Health
// wakes when there is one.
func (j *Journal) Notices() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := j.notices
	j.notices = nil
	return n
}
