// Package migrate takes a state directory of the earlier layout (state.json,
// outbox/, replies.json) into a journal, once, on the first start after an
// upgrade, so that a room upgraded in the field keeps its visit, its seq and
// the records it had not delivered yet.
//
// What becomes of each piece:
//
//   - state.json: its snapshot becomes the journal's first state (the visit,
//     the alerts, seq), its time axis checkpoint the journal's head, and its
//     unsent records the records of that first entry;
//   - outbox/: every entry the broker had not acknowledged is published
//     again, in order, verbatim except that it gains the journal's epoch;
//   - replies.json: every reply answers a redelivered command for the
//     journal's retention (24 hours by default).
//
// The journal is written in a directory beside the final one and renamed
// into place once synced, so a crash during the migration leaves the old
// layout in force and the next start migrates again. The old files are then
// removed, except state.json and replies.json, kept with the suffix
// .migrated for examination.
package migrate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon/timebase"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/wallclock"
)

// The earlier layout's names inside the state directory.
const (
	StateFile   = "state.json"
	OutboxDir   = "outbox"
	RepliesFile = "replies.json"
)

// Report says what Run migrated.
type Report struct {
	Migrated     bool
	VisitRunning bool
	Seq          uint64 // the room's seq at migration
	Messages     int    // undelivered outbox entries taken over
	Records      int    // unsent records of state.json taken over
	Replies      int    // replies taken over
	// Problems lists what could not be read (the rest was migrated).
	Problems []string
}

// legacyState is the earlier layout's state.json.
type legacyState struct {
	Version    int                 `json:"version"`
	Room       string              `json:"room"`
	Clock      timebase.Checkpoint `json:"clock"`
	Controller controller.Snapshot `json:"controller"`
	Unsent     []controller.Record `json:"unsent,omitempty"`
}

type legacyReplies struct {
	Version int `json:"version"`
	Entries []struct {
		ID    string          `json:"id"`
		Reply json.RawMessage `json:"reply"`
	} `json:"entries"`
}

// Run migrates stateDir into a journal at journalDir when journalDir does not
// exist yet and stateDir holds the earlier layout; otherwise it does nothing.
// room is the configured room id: a state.json of another room is not taken
// over (reported as a problem).
func Run(stateDir, journalDir, room string, jo journal.Options, log *slog.Logger) (Report, error) {
	var rep Report
	if _, err := os.Stat(journalDir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return rep, nil // a journal exists (or the directory cannot be read: Open will say)
	}
	statePath := filepath.Join(stateDir, StateFile)
	outboxPath := filepath.Join(stateDir, OutboxDir)
	repliesPath := filepath.Join(stateDir, RepliesFile)
	if !exists(statePath) && !exists(outboxPath) && !exists(repliesPath) {
		return rep, nil
	}
	tmp := journalDir + ".migrating"
	if err := os.RemoveAll(tmp); err != nil {
		return rep, fmt.Errorf("migrate: remove an interrupted migration %s: %w", tmp, err)
	}
	jo.FS = nil
	j, err := journal.Open(tmp, jo)
	if err != nil {
		return rep, fmt.Errorf("migrate: %w", err)
	}
	defer j.Close()
	ep := j.Epoch()

	var first, second journal.Entry
	// The outbox: undelivered messages, first (their seqs are the oldest).
	msgs, err := readOutbox(outboxPath)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	sent := map[uint64]bool{}
	for _, m := range msgs {
		payload, seq, err := withEpoch(m.payload, ep)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("outbox entry %d: %v", m.id, err))
			continue
		}
		sent[seq] = true
		first.Messages = append(first.Messages, journal.Message{Topic: m.topic, Payload: payload, Seq: seq})
		rep.Messages++
	}

	// state.json: the snapshot and the records not yet in the outbox.
	var st legacyState
	haveState := false
	if data, err := Read(statePath); err == nil {
		if err := json.Unmarshal(data, &st); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", statePath, err))
		} else if st.Room != room {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s belongs to room %q, not %q", statePath, st.Room, room))
		} else {
			haveState = true
		}
	} else if !errors.Is(err, ErrNotExist) {
		rep.Problems = append(rep.Problems, err.Error())
	}
	if haveState {
		snap := st.Controller
		second.At = snap.Now
		second.Snapshot = &snap
		for _, r := range st.Unsent {
			if !sent[r.Seq] {
				second.Records = append(second.Records, r)
				rep.Records++
			}
		}
		rep.Seq = snap.Seq
		rep.VisitRunning = snap.Visit != nil
		b, err := json.Marshal(timebase.HeadBlob{Room: room, Clock: st.Clock})
		if err == nil {
			err = j.SetBlob(b)
		}
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("time axis: %v", err))
		}
	}

	// replies.json: answers to redelivered commands.
	if data, err := Read(repliesPath); err == nil {
		var lr legacyReplies
		if err := json.Unmarshal(data, &lr); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", repliesPath, err))
		}
		for _, e := range lr.Entries {
			second.Cached = append(second.Cached, journal.CachedReply{RequestID: e.ID, Payload: e.Reply})
			rep.Replies++
		}
	} else if !errors.Is(err, ErrNotExist) {
		rep.Problems = append(rep.Problems, err.Error())
	}
	if second.At.IsZero() {
		second.At = wallclock.Now()
	}
	first.At = second.At

	var es []*journal.Entry
	if len(first.Messages) > 0 {
		es = append(es, &first)
	}
	if second.Snapshot != nil || len(second.Records) > 0 || len(second.Cached) > 0 {
		es = append(es, &second)
	}
	if err := j.Append(es...); err != nil {
		return rep, fmt.Errorf("migrate: write the journal: %w", err)
	}
	if err := j.Close(); err != nil {
		return rep, fmt.Errorf("migrate: close the journal: %w", err)
	}
	if err := os.Rename(tmp, journalDir); err != nil {
		return rep, fmt.Errorf("migrate: put the journal in place: %w", err)
	}
	if err := (journal.OS{}).SyncDir(stateDir); err != nil {
		return rep, fmt.Errorf("migrate: %w", err)
	}
	rep.Migrated = true
	// The journal holds everything now: the old files go.
	for _, p := range []string{statePath, repliesPath} {
		if exists(p) {
			if err := os.Rename(p, p+".migrated"); err != nil {
				log.Warn("migrate: cannot rename an old file; it is no longer read", "path", p, "err", err)
			}
		}
	}
	if err := os.RemoveAll(outboxPath); err != nil {
		log.Warn("migrate: cannot remove the old outbox; it is no longer read", "path", outboxPath, "err", err)
	}
	for _, p := range rep.Problems {
		log.Error("migrate: part of the earlier state could not be taken over", "problem", p)
	}
	return rep, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// withEpoch adds the epoch to an earlier event payload and returns its seq.
func withEpoch(payload []byte, ep journal.Epoch) ([]byte, uint64, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, 0, fmt.Errorf("not a JSON object: %w", err)
	}
	seq, err := strconv.ParseUint(string(m["seq"]), 10, 64)
	if err != nil || seq == 0 {
		return nil, 0, fmt.Errorf("no seq")
	}
	m["epoch"] = json.RawMessage(strconv.Quote(ep.String()))
	b, err := json.Marshal(m)
	return b, seq, err
}

// legacyMsg is an undelivered entry of the earlier outbox.
type legacyMsg struct {
	id      uint64
	topic   string
	payload []byte
}

// readOutbox returns the entries of the earlier outbox that the broker had
// not acknowledged, in order. Damaged records are skipped.
func readOutbox(dir string) ([]legacyMsg, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the old outbox: %w", err)
	}
	acked := map[uint64]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "acks.log")); err == nil {
		for off := 0; off+13 <= len(b); {
			if b[off] == 0xA5 && crc32.Checksum(b[off:off+9], castagnoli) == binary.LittleEndian.Uint32(b[off+9:off+13]) {
				acked[binary.LittleEndian.Uint64(b[off+1:off+9])] = true
				off += 13
				continue
			}
			off++
		}
	}
	var out []legacyMsg
	var problems []string
	var segs []string
	for _, de := range names {
		if strings.HasPrefix(de.Name(), "seg-") && strings.HasSuffix(de.Name(), ".log") {
			segs = append(segs, de.Name())
		}
	}
	slices.Sort(segs)
	for _, name := range segs {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			problems = append(problems, fmt.Sprintf("old outbox %s: %v", name, err))
			continue
		}
		for off := 0; off+8 <= len(b); {
			n := int(binary.LittleEndian.Uint32(b[off : off+4]))
			end := off + 8 + n
			if n < 12 || end > len(b) ||
				crc32.Update(crc32.Checksum(b[off:off+4], castagnoli), castagnoli, b[off+8:end]) != binary.LittleEndian.Uint32(b[off+4:off+8]) {
				off++
				continue
			}
			body := b[off+8 : end]
			id := binary.LittleEndian.Uint64(body[0:8])
			tl := int(binary.LittleEndian.Uint16(body[9:11]))
			if 11+tl <= len(body) && !acked[id] {
				out = append(out, legacyMsg{id: id, topic: string(body[11 : 11+tl]), payload: slices.Clone(body[11+tl:])})
			}
			off = end
		}
	}
	slices.SortFunc(out, func(a, b legacyMsg) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	if len(problems) > 0 {
		return out, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}
