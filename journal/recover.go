package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Recovery reports what Open found and did.
type Recovery struct {
	// Fresh: there was no journal; a new one begins (a new epoch).
	Fresh bool
	// NewEpoch: the journal could not prove which seqs were handed out
	// after its latest snapshot (damage or loss after it, a power cut that
	// may have taken entries published from memory), so records continue
	// in a new epoch. Reason says why.
	NewEpoch bool
	Reason   string
	// SeqFloor is the seq floor: the room's seqs and alert numbers must
	// continue above it (controller state Seq and NextAlert at least this).
	// It is the seq reservation when entries published before a power cut
	// or while the disk refused them may be missing, so that no seq and no
	// alert id is handed out twice.
	SeqFloor uint64
	// MayHaveLost, when not empty, says what the room may have forgotten:
	// entries that lived in memory only (the disk refused or failed to sync
	// them, or the system died before the syncer ran) and that a consumer
	// may have received. It is part of the critical journal fault.
	MayHaveLost string
	// Entries is the number of entries found intact.
	Entries int
	// TornBytes is the size of the incomplete entry removed from the end:
	// a write cut short, never acknowledged, never published.
	TornBytes int64
	// Lost is a lower bound on entries lost to damage.
	Lost int
	// Damage describes each damaged region, for the log and the alert.
	Damage []string
	// SetAside lists damaged files kept for examination.
	SetAside []string
	// DroppedCopies lists set-aside copies deleted because together they
	// were above their share of MaxBytes (a quarter), oldest first.
	DroppedCopies []string
	// HeadDamaged: both slots of the head file were damaged; entries are
	// published again from the oldest one kept.
	HeadDamaged bool
	// WriteErr is why the journal cannot be written at all (for example a
	// read-only state directory); nil when it can. Appends then keep entries
	// in memory, under a new epoch.
	WriteErr error
	// Took is how long recovery took.
	Took time.Duration
}

// Damaged reports whether anything was lost or set aside.
func (r Recovery) Damaged() bool {
	return r.Lost > 0 || len(r.Damage) > 0 || r.MayHaveLost != "" || len(r.DroppedCopies) > 0
}

// Recovered reports what Open found.
func (j *Journal) Recovered() Recovery { return j.rec }

// recover reads the directory into j.
func (j *Journal) recover() error {
	hs, headDamaged, err := loadHead(j.fsys, j.dir)
	if err != nil {
		return err
	}
	j.rec.HeadDamaged = headDamaged
	names, err := j.fsys.ReadDir(j.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if id, err := j.fsys.Ident(j.dir); err == nil {
		j.dirID = id
	}
	present := map[string]bool{}
	for _, n := range names {
		present[n] = true
	}
	var copies []string
	for _, n := range names {
		if strings.HasSuffix(n, tmpSuffix) {
			_ = j.fsys.Remove(join(j.dir, n)) // an interrupted rewrite; the original is intact
			continue
		}
		if i := strings.Index(n, damagedTag); i > 0 {
			orig := n[:i]
			if _, ok := parseSegName(orig); ok && !present[orig] {
				// The only copy of a segment whose rewrite failed: it is the
				// segment, read (and repaired) as such.
				first, _ := parseSegName(orig)
				path := join(j.dir, n)
				if err := j.fsys.Rename(path, join(j.dir, orig)); err == nil {
					present[orig] = true
					path = join(j.dir, orig)
					j.log.Warn("journal: a set-aside segment was the only copy; restored", "file", n)
				}
				j.segs = append(j.segs, &segment{first: first, path: path})
				continue
			}
			copies = append(copies, n)
		}
	}
	for _, n := range names {
		if first, ok := parseSegName(n); ok {
			j.segs = append(j.segs, &segment{first: first, path: join(j.dir, n)})
		}
	}
	// A copy read as its segment sorts by its LSN.
	slices.SortStableFunc(j.segs, func(a, b *segment) int { return cmpU64(a.first, b.first) })
	j.boundCopies(copies)

	// Read every segment; note what is missing where.
	var lostAt []uint64 // LSNs after which something was lost
	scans := make([]*segScan, len(j.segs))
	prev := uint64(0)
	lastEpoch, lastAt := hs.epoch, time.Unix(0, 0).UTC()
	for i, s := range j.segs {
		if i > 0 && s.first > prev+1 && prev > 0 {
			j.damage(&lostAt, prev, int(s.first-prev-1), "entries %d to %d missing (a segment is gone)", prev+1, s.first-1)
			scans[i-1].gaps = append(scans[i-1].gaps, [2]uint64{prev + 1, s.first - 1})
			// Counted once: the scan of s starts above the gap.
			prev = s.first - 1
		}
		scans[i] = j.scan(s, i == len(j.segs)-1, &prev, &lostAt)
		scans[i].before = markerStamp{lastEpoch, lastAt}
		if n := len(scans[i].refs); n > 0 {
			lastEpoch, lastAt = scans[i].refs[n-1].hdr.epoch, scans[i].refs[n-1].hdr.at
		}
	}
	if n := len(scans); n > 0 {
		last := scans[n-1]
		switch {
		case last.tailDamaged:
			j.rec.Lost += max(1, int(min(hs.hwm-min(hs.hwm, prev), 1<<30)))
			if hs.hwm > prev {
				last.gaps = append(last.gaps, [2]uint64{prev + 1, hs.hwm})
			}
		case hs.hwm > prev && !last.unreadable:
			j.damage(&lostAt, prev, int(hs.hwm-prev), "entries %d to %d missing at the end", prev+1, hs.hwm)
			last.gaps = append(last.gaps, [2]uint64{prev + 1, hs.hwm})
		}
	}
	// Repair: damaged segments are set aside and rewritten with their
	// valid entries; lost ranges are marked, so that the next start does
	// not report them again.
	for _, sc := range scans {
		j.repair(sc)
		if !sc.gone {
			j.idx = append(j.idx, sc.refs...)
		}
	}
	j.segs = slices.DeleteFunc(j.segs, func(s *segment) bool {
		for _, sc := range scans {
			if sc.seg == s && sc.gone {
				return true
			}
		}
		return false
	})
	j.rec.Entries = 0
	for _, r := range j.idx {
		if !r.hdr.has(flagLost) {
			j.rec.Entries++
		}
		j.seqMax = max(j.seqMax, r.hdr.seqLast)
	}

	// The latest snapshot decides where the room resumes.
	snapLSN := uint64(0)
	for i := len(j.idx) - 1; i >= 0; i-- {
		r := j.idx[i]
		if !r.hdr.has(flagSnapshot) {
			continue
		}
		e, err := j.readRef(r)
		if err != nil || e.Snapshot == nil {
			j.damage(&lostAt, r.hdr.lsn, 1, "entry %d unreadable: %v", r.hdr.lsn, err)
			continue
		}
		j.latest, j.latestAt, snapLSN = e.Snapshot, e.At, r.hdr.lsn
		break
	}
	if n := len(j.idx); n > 0 {
		last := j.idx[n-1].hdr
		j.epoch = last.epoch
		if hs.epoch != 0 && hs.hwm >= last.lsn && hs.format >= 2 {
			// The head was written after the last entry: the epoch it
			// names is the one chosen last (a new epoch chosen at an Open
			// that died before its first Append is still in force).
			j.epoch = hs.epoch
		}
		j.nextLSN = max(last.lsn, last.lostTo) + 1
	}
	j.nextLSN = max(j.nextLSN, hs.hwm+1, hs.acked.LSN, 1)
	clean := hs.flags&headClean != 0
	otherBoot := j.boot == 0 || hs.boot != j.boot
	if m := j.readMark(); m != 0 && !clean && hs.degradedFrom == 0 {
		// The disk refused even the head (read-only): the mark in memory
		// says what the head could not.
		hs.degradedFrom = m
		if hs.reserved == 0 {
			hs.reserved = j.seqMax + ReserveBlock
		}
	}
	floor := max(hs.floor, j.seqMax)
	switch {
	case j.rec.Entries == 0 && len(scans) == 0 && hs.counter == 0:
		j.rec.Fresh = true
		j.rec.Reason = "no journal: a new one begins"
		j.epoch = NewEpoch()
	case j.rec.Entries == 0:
		j.rec.NewEpoch = true
		j.rec.Reason = "the journal holds no readable entry"
		j.epoch = NewEpoch()
	case !clean && hs.degradedFrom != 0:
		j.rec.NewEpoch = true
		j.rec.Reason = "roomd stopped while entries from LSN " + fmtLSN(hs.degradedFrom) + " lived in memory only (the disk refused or failed to sync them)"
		j.rec.MayHaveLost = fmt.Sprintf("records up to seq %d announced while the disk refused the journal may be missing here (a visit started, alerts raised or cleared); consumers may hold them; seqs and alert numbers continue above %d",
			max(hs.reserved, floor), max(hs.reserved, floor))
		floor = max(floor, hs.reserved)
		j.epoch = NewEpoch()
	case !clean && otherBoot && hs.reserved > 0:
		j.rec.NewEpoch = true
		j.rec.Reason = "the system restarted without a clean stop of roomd (a power cut?): entries published in the last moments before it may not have reached the disk"
		j.rec.MayHaveLost = fmt.Sprintf("records published just before the system went down may be missing (seq above %d); seqs and alert numbers continue above %d",
			j.seqMax, max(hs.reserved, floor))
		floor = max(floor, hs.reserved)
		j.epoch = NewEpoch()
	case slices.ContainsFunc(lostAt, func(l uint64) bool { return l >= snapLSN }):
		j.rec.NewEpoch = true
		j.rec.Reason = "entries after the latest snapshot were lost, so the seqs handed out since cannot be proved"
		j.epoch = NewEpoch()
	}
	if !clean && j.rec.NewEpoch && hs.reserved > 0 {
		// Whatever was lost was below the reservation.
		floor = max(floor, hs.reserved)
	}
	j.rec.SeqFloor = floor
	j.seqMax = max(j.seqMax, floor)
	j.clearMark() // what it said is settled now (a new epoch, the floor)
	j.acked = hs.acked
	if first := j.firstLSN(); j.acked.LSN < first {
		j.acked = Pos{LSN: first}
	}
	j.synced = j.nextLSN - 1
	j.written = j.synced
	j.want = headState{acked: j.acked, hwm: j.nextLSN - 1, epoch: j.epoch, blob: hs.blob,
		reserved: j.seqMax + ReserveBlock, boot: j.boot, floor: floor}

	// Write side: the active segment and the head file.
	if n := len(j.segs); n > 0 && !j.tailStuck {
		act := j.segs[n-1]
		f, err := j.fsys.OpenFile(act.path, os.O_RDWR, 0)
		if err != nil {
			j.rec.WriteErr = fmt.Errorf("open %s for writing: %w", act.path, err)
		} else {
			j.active, j.activeSize = f, act.size
			if act.r != nil {
				_ = act.r.Close()
			}
			act.r = f
		}
	}
	head, err := openHead(j.fsys, j.dir, j.want, hs.counter)
	j.head = head
	if err != nil && j.rec.WriteErr == nil {
		j.rec.WriteErr = err
	}
	if j.rec.WriteErr != nil {
		j.degraded = j.rec.WriteErr
		if !j.rec.Fresh && !j.rec.NewEpoch {
			// Whatever is appended now can only live in memory: give it a
			// seq space of its own (see Append).
			j.epoch = NewEpoch()
		}
		j.want.degradedFrom = j.nextLSN
		j.setMark(j.nextLSN)
	}
	return nil
}

// markerStamp is the epoch and time a lost marker takes when its segment
// has no entry before it.
type markerStamp struct {
	epoch Epoch
	at    time.Time
}

// boundCopies keeps the set-aside copies within a quarter of MaxBytes,
// deleting the oldest (by name: the time they were set aside) first; what
// it deletes is reported (Recovery.DroppedCopies) and raises the journal
// fault. The copies it keeps count in Size.
func (j *Journal) boundCopies(copies []string) {
	budget := j.opt.MaxBytes / 4
	type cp struct {
		name string
		size int64
		when string
	}
	var cs []cp
	var total int64
	for _, n := range copies {
		f, err := j.fsys.OpenFile(join(j.dir, n), os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		size, _ := f.Size()
		_ = f.Close()
		cs = append(cs, cp{n, size, n[strings.Index(n, damagedTag)+len(damagedTag):]})
		total += size
	}
	slices.SortFunc(cs, func(a, b cp) int { return strings.Compare(a.when, b.when) })
	for len(cs) > 0 && total > budget {
		if err := j.fsys.Remove(join(j.dir, cs[0].name)); err != nil {
			j.log.Warn("journal: cannot delete a set-aside copy", "file", cs[0].name, "err", err)
			break
		}
		j.rec.DroppedCopies = append(j.rec.DroppedCopies, cs[0].name)
		total -= cs[0].size
		cs = cs[1:]
	}
	if len(j.rec.DroppedCopies) > 0 {
		_ = j.fsys.SyncDir(j.dir)
	}
	j.copyBytes = total
}

// segScan is what recovery learnt of one segment.
type segScan struct {
	seg         *segment
	data        []byte      // the file as read
	refs        []ref       // valid entries, offsets into data
	gaps        [][2]uint64 // LSN ranges lost in or right after this segment
	damaged     bool        // bytes that are not valid entries (beyond a torn end)
	tailDamaged bool        // the damage reaches the end of the last segment
	unreadable  bool
	gone        bool        // nothing of it is left
	before      markerStamp // the last entry before this segment
}

// damage records lost entries at LSN position at.
func (j *Journal) damage(lostAt *[]uint64, at uint64, lost int, format string, args ...any) {
	*lostAt = append(*lostAt, at)
	j.rec.Lost += lost
	j.rec.Damage = append(j.rec.Damage, fmt.Sprintf(format, args...))
}

// scan reads and indexes segment s. prev is the LSN of the last valid entry
// before it, and is advanced.
func (j *Journal) scan(s *segment, isLast bool, prev *uint64, lostAt *[]uint64) *segScan {
	sc := &segScan{seg: s}
	b, err := readFile(j.fsys, s.path)
	if err != nil {
		j.damage(lostAt, *prev, 1, "segment %s unreadable: %v", s.path, err)
		sc.unreadable, sc.damaged = true, true
		return sc
	}
	sc.data = b
	valid := func(off int) (header, int, bool) {
		h, js, n, err := readFrame(b[off:])
		if err != nil || h.lsn <= *prev || h.lsn < s.first {
			return header{}, 0, false
		}
		if h.has(flagLost) {
			var l struct {
				To uint64 `json:"lost_to"`
			}
			if json.Unmarshal(js, &l) != nil || l.To < h.lsn {
				return header{}, 0, false
			}
			h.lostTo = l.To
		}
		return h, n, true
	}
	end := 0
	for off := 0; off < len(b); {
		if h, n, ok := valid(off); ok {
			if *prev > 0 && h.lsn > *prev+1 {
				j.damage(lostAt, *prev, int(h.lsn-*prev-1), "%s: entries %d to %d missing", s.path, *prev+1, h.lsn-1)
				sc.gaps = append(sc.gaps, [2]uint64{*prev + 1, h.lsn - 1})
			}
			sc.refs = append(sc.refs, ref{seg: s, off: int64(off), size: n, hdr: h})
			*prev = max(h.lsn, h.lostTo)
			off += n
			end = off
			continue
		}
		next := off + 1
		for ; next < len(b); next++ {
			if _, _, ok := valid(next); ok {
				break
			}
		}
		if next >= len(b) {
			// Nothing valid follows in the segment. A frame that runs past
			// the end, or a zero length, is a write cut short: it never
			// completed, so it was never visible, never published. (In an
			// older segment it is one whose cut could not be made at an
			// earlier start; entries missing there show as a gap in LSNs
			// to the next segment.) Anything else was complete once.
			if _, _, _, err := readFrame(b[off:]); errors.Is(err, errShort) || errors.Is(err, errBadLen) {
				j.rec.TornBytes += int64(len(b) - off)
				break
			}
			sc.tailDamaged = isLast
		}
		// Entries lost here are counted by the LSN gap to the next valid
		// entry (here, in a later segment, or in the head's highest LSN).
		j.damage(lostAt, *prev, 0, "%s: %d damaged bytes at offset %d", s.path, next-off, off)
		sc.damaged = true
		off = next
	}
	s.size = int64(end)
	if !sc.damaged && end < len(b) {
		if err := j.truncate(s.path, int64(end)); err != nil {
			// The torn bytes stay; nothing is appended after them (a new
			// segment takes the next entries), and the next Open cuts them.
			j.log.Warn("journal: cannot cut a torn end; the next entries go to a new segment", "path", s.path, "err", err)
			j.tailStuck = isLast
		}
	}
	return sc
}

// repair sets a damaged segment aside and writes its valid entries back
// under its name, with a marker for every lost LSN range in or right after
// it; an intact segment only gets the markers appended.
func (j *Journal) repair(sc *segScan) {
	if sc.unreadable {
		to, err := j.setAside(sc.seg.path)
		if err == nil {
			j.rec.SetAside = append(j.rec.SetAside, to)
		}
		sc.gone = true
		return
	}
	if !sc.damaged && len(sc.gaps) == 0 {
		return
	}
	marker := func(g [2]uint64) []byte {
		ep, at := sc.before.epoch, sc.before.at
		found := false
		for _, r := range sc.refs {
			if r.hdr.lsn < g[0] {
				ep, at, found = r.hdr.epoch, r.hdr.at, true
			}
		}
		if !found && ep == 0 && len(sc.refs) > 0 {
			ep, at = sc.refs[0].hdr.epoch, sc.refs[0].hdr.at
		}
		if ep == 0 {
			ep = 1 // nothing anywhere to take it from; a marker's epoch is never read
		}
		f, _, _ := appendFrame(nil, &Entry{LSN: g[0], Epoch: ep, At: at, lostTo: g[1]})
		return f
	}
	// The new content, in LSN order.
	type piece struct {
		lsn  uint64
		data []byte
		hdr  header
	}
	var pieces []piece
	for _, r := range sc.refs {
		pieces = append(pieces, piece{lsn: r.hdr.lsn, data: sc.data[r.off : r.off+int64(r.size)], hdr: r.hdr})
	}
	for _, g := range sc.gaps {
		f := marker(g)
		h, _, _, _ := readFrame(f)
		h.lostTo = g[1]
		pieces = append(pieces, piece{lsn: g[0], data: f, hdr: h})
	}
	slices.SortFunc(pieces, func(a, b piece) int { return cmpU64(a.lsn, b.lsn) })
	var content []byte
	var refs []ref
	for _, p := range pieces {
		refs = append(refs, ref{seg: sc.seg, off: int64(len(content)), size: len(p.data), hdr: p.hdr})
		content = append(content, p.data...)
	}
	if sc.damaged {
		to, err := j.setAside(sc.seg.path)
		if err != nil {
			j.log.Error("journal: cannot set a damaged segment aside; reading what is valid in place", "path", sc.seg.path, "err", err)
			return
		}
		if err := j.writeWhole(sc.seg.path, content); err != nil {
			// (A full disk, say.) The copy is the only one: it goes back
			// under its name, read in place, and repaired at a later Open.
			if rerr := j.fsys.Rename(to, sc.seg.path); rerr != nil {
				j.log.Error("journal: cannot rewrite a damaged segment nor put it back; reading it from the set-aside copy, which the next start reads as the segment", "path", sc.seg.path, "err", err, "rename", rerr)
				sc.seg.path = to
			} else {
				j.log.Error("journal: cannot rewrite the valid part of a damaged segment; it is read in place and repaired at a later start", "path", sc.seg.path, "err", err)
			}
			_ = j.fsys.SyncDir(j.dir)
			return
		}
		j.rec.SetAside = append(j.rec.SetAside, to)
	} else if markersAfter(sc) {
		// Intact, and every marker sorts after its entries: append them
		// in place.
		tail := content[sc.seg.size:]
		if err := j.appendInPlace(sc.seg.path, sc.seg.size, tail); err != nil {
			j.log.Warn("journal: cannot mark lost entries; they will be reported again at the next start", "path", sc.seg.path, "err", err)
			return
		}
	} else {
		// Intact, with a gap before or between its entries (the backlog
		// dropped entries, then the disk took the rest): the markers go in
		// LSN order, so the segment is written anew (through .tmp).
		if err := j.writeWhole(sc.seg.path, content); err != nil {
			j.log.Warn("journal: cannot mark lost entries; they will be reported again at the next start", "path", sc.seg.path, "err", err)
			return
		}
		if sc.seg.r != nil {
			_ = sc.seg.r.Close()
			sc.seg.r = nil
		}
	}
	_ = j.fsys.SyncDir(j.dir)
	sc.refs = refs
	sc.seg.size = int64(len(content))
}

// markersAfter reports whether every lost range of an intact segment sorts
// after its last entry.
func markersAfter(sc *segScan) bool {
	if len(sc.refs) == 0 {
		return true
	}
	last := sc.refs[len(sc.refs)-1].hdr.lsn
	for _, g := range sc.gaps {
		if g[0] < last {
			return false
		}
	}
	return true
}

func (j *Journal) setAside(path string) (string, error) {
	to := path + damagedTag + j.opt.Now().UTC().Format("20060102T150405.000000000Z")
	if err := j.fsys.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}

func (j *Journal) appendInPlace(path string, at int64, data []byte) error {
	return j.edit(path, func(f File) error {
		_, err := f.WriteAt(data, at)
		return err
	})
}

// edit opens an existing file, changes it with do, syncs and closes it.
func (j *Journal) edit(path string, do func(File) error) error {
	f, err := j.fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := do(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (j *Journal) writeWhole(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := j.fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		_ = j.fsys.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = j.fsys.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = j.fsys.Remove(tmp)
		return err
	}
	return j.fsys.Rename(tmp, path)
}

func (j *Journal) truncate(path string, size int64) error {
	return j.edit(path, func(f File) error { return f.Truncate(size) })
}
