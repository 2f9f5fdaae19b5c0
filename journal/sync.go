package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/roomd/roomd/wallclock"
)

// ReserveBlock is how many seqs the head reserves ahead of the records
// appended. Append moves the reservation one block ahead of the highest seq
// it was given whenever less than half a block is left, and the head is
// written behind the step (never on its path). After a power cut the room
// resumes above the reservation: no record published from memory before
// the cut can share its seq, nor an alert its id, with one announced after.
const ReserveBlock = 4096

// kickSync asks the syncer to make what was written durable. The caller
// holds j.mu.
func (j *Journal) kickSync() {
	select {
	case j.syncKick <- struct{}{}:
	default:
	}
}

// kickHead asks the background goroutine to write the head now rather
// than at its next tick. The caller holds j.mu.
func (j *Journal) kickHead() {
	select {
	case j.headKick <- struct{}{}:
	default:
	}
}

// healthChanged wakes whoever waits on Health. The caller holds j.mu.
func (j *Journal) healthChanged() {
	if j.closed {
		return // Close and Abandon close it
	}
	close(j.health)
	j.health = make(chan struct{})
}

// Health returns a channel closed when the disk's state changes after the
// call: a background sync failed or works again, or one sync took longer
// than SyncStall. Append (with no entries) then says what holds.
func (j *Journal) Health() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.health
}

// SyncStats returns the measurements of the journal's syncs.
func (j *Journal) SyncStats() *SyncStats { return j.stats }

// Durable returns the highest LSN known to be on the disk (synced).
func (j *Journal) Durable() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.synced
}

// SyncGap is the shortest time between the starts of two syncs: steps
// that come faster share the next sync (group commit over SyncGap). The
// first step after a quiet spell is synced at once. It bounds the syncs a
// command flood at the rate limit costs the card (docs/performance.md,
// "Wear budget": 20 steps a second would otherwise be 20 syncs), at the
// price of a power-cut window of SyncGap (what a power cut can cost is the
// same either way: see the package doc).
const SyncGap = 250 * time.Millisecond

// syncer makes written entries durable, one fdatasync for whatever was
// written since the previous one (group commit), at most one per SyncGap.
func (j *Journal) syncer() {
	defer close(j.syncDone)
	var last time.Time
	for {
		select {
		case <-j.stop:
			return
		case <-j.syncKick:
		}
		if wait := SyncGap - wallclock.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-j.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = wallclock.Now()
		_ = j.syncOnce()
	}
}

// syncOnce syncs every segment written since the last sync (and the
// directory when a segment was created). A failure is kept (Append
// reports it as a *DiskError, Health wakes) and marked in the head: a
// restart that finds the mark without a clean stop continues in a new
// epoch above the reservation.
func (j *Journal) syncOnce() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if len(j.dirty) == 0 && !j.dirtyDir {
		err := j.syncErr
		j.mu.Unlock()
		return err
	}
	segs := make([]*segment, 0, len(j.dirty))
	files := make([]File, 0, len(j.dirty))
	for s, f := range j.dirty {
		segs = append(segs, s)
		files = append(files, f)
	}
	clear(j.dirty)
	dirDirty := j.dirtyDir
	j.dirtyDir = false
	target := j.written
	j.mu.Unlock()

	start := wallclock.Now()
	j.stats.Begin(start)
	var err error
	if dirDirty {
		err = j.fsys.SyncDir(j.dir)
	}
	for _, f := range files {
		if serr := f.Sync(); serr != nil && err == nil {
			err = serr
		}
	}
	took := wallclock.Since(start)
	j.stats.Observe(took)

	j.mu.Lock()
	defer j.mu.Unlock()
	if took > SyncStall {
		j.log.Warn("journal: one sync took longer than the card should ever take", "took", took, "dir", j.dir)
		j.healthChanged()
	}
	if err != nil && j.closed {
		return err // an abandoned journal's last sync, or Close's: no mark
	}
	if err != nil {
		for i, s := range segs {
			if _, ok := j.dirty[s]; !ok {
				j.dirty[s] = files[i]
			}
		}
		j.dirtyDir = j.dirtyDir || dirDirty
		if j.syncErr == nil {
			j.log.Error("journal: the disk failed to sync entries already published; a restart will continue in a new epoch", "err", err)
			j.healthChanged()
		}
		j.syncErr = err
		j.syncFailed = true
		if j.want.degradedFrom == 0 {
			j.want.degradedFrom = j.synced + 1
			j.setMark(j.want.degradedFrom)
		}
		j.headDirty = true
		j.kickHead()
		return err
	}
	j.synced = max(j.synced, target)
	j.want.hwm = j.synced
	j.headDirty = true
	if len(j.segs) > 1 && j.activeSize+int64(len(j.segs)-1)*j.opt.SegmentBytes > j.opt.MaxBytes {
		j.kickHead() // segments that waited for this sync may go now
	}
	if j.syncErr != nil {
		j.syncErr = nil
		j.log.Info("journal: the disk syncs again")
		j.healthChanged()
	}
	if !j.syncFailed && j.degraded == nil && j.want.degradedFrom != 0 && j.synced >= j.markClearAt {
		// What the disk had refused is durable now.
		j.want.degradedFrom = 0
		j.clearMark()
	}
	return nil
}

// bootID identifies the running system's boot: a restart in the same boot
// finds in the files everything written to them (the kernel keeps it), a
// restart in another may not. 0: unknown (every restart is taken as
// another boot).
func bootID(given string) uint64 {
	if given == "" {
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err != nil {
			return 0
		}
		given = strings.TrimSpace(string(b))
	}
	if given == "" {
		return 0
	}
	var h uint64 = 14695981039346656037
	for _, c := range []byte(given) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h | 1
}

func fmtLSN(n uint64) string { return strconv.FormatUint(n, 10) }

// markPath is the refusal mark's file in memory (Options.MarkDir), one per
// journal directory.
func (j *Journal) markPath() string {
	abs, err := filepath.Abs(j.dir)
	if err != nil {
		abs = j.dir
	}
	return filepath.Join(j.opt.MarkDir, fmt.Sprintf("roomd-journal-%016x.refused", bootID(abs)))
}

// setMark leaves the refusal mark in memory (the head gets it too, if the
// disk takes it). The caller holds j.mu.
func (j *Journal) setMark(lsn uint64) {
	_ = os.WriteFile(j.markPath(), []byte(fmtLSN(lsn)+"\n"), 0o600)
}

// clearMark removes the mark in memory.
func (j *Journal) clearMark() { _ = os.Remove(j.markPath()) }

// readMark returns the LSN of a mark left in memory by a run of this boot.
func (j *Journal) readMark() uint64 {
	b, err := os.ReadFile(j.markPath())
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 1
	}
	return max(n, 1)
}
