package board

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roomd/roomd/contract"
)

// Records are the board's operational records (EN 50134-7): for every
// alert of every room, when it was raised, acknowledged and by whom,
// cleared (and whether by the reset at the room), with the times between,
// per room and per shift. They say nothing about the occupants: no visit
// id, no presence, no detail text; only the room, the alert's kind,
// severity and id, the times and the operator ids.
//
// The events are appended to records.jsonl in the board's state directory
// as they come (one JSON line each), and read back at start. The file is
// bounded: past MaxBytes it becomes records.1.jsonl (the one before is
// dropped), so the two hold the latest MaxBytes to 2×MaxBytes of history
// (tens of thousands of alerts). In memory the latest MaxAlerts alerts are
// kept. Without a directory the records live in memory only.
type Records struct {
	mu        sync.Mutex
	dir       string
	maxBytes  int64
	maxAlerts int
	shifts    []time.Duration // shift starts, from local midnight, sorted
	loc       *time.Location
	alerts    map[string]*ResponseRecord
	order     []string // keys, oldest first
	f         *os.File
	size      int64
	err       error // the latest write error (the board logs it)
	// Skipped counts the lines OpenRecords could not read (and skipped).
	Skipped int
}

// RecordsOptions configure Records.
type RecordsOptions struct {
	// Dir is where records.jsonl is kept ("" : in memory only).
	Dir string
	// MaxBytes bounds records.jsonl before it rotates (default 4 MiB).
	MaxBytes int64
	// MaxAlerts bounds the alerts kept in memory (default 20000).
	MaxAlerts int
	// Shifts are the starts of the site's shifts, from local midnight
	// (default 06:00, 14:00, 22:00).
	Shifts []time.Duration
	// Location is the site's time zone for shifts (default time.Local).
	Location *time.Location
}

// DefaultShifts are three shifts of eight hours.
var DefaultShifts = []time.Duration{6 * time.Hour, 14 * time.Hour, 22 * time.Hour}

// ParseShifts reads "06:00,14:00,22:00": the local times at which the
// site's shifts start.
func ParseShifts(s string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		t, err := time.Parse("15:04", f)
		if err != nil {
			return nil, fmt.Errorf("shift start %q: want HH:MM, e.g. 06:00", f)
		}
		d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
		if slices.Contains(out, d) {
			return nil, fmt.Errorf("shift start %q given twice", f)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no shift start: want e.g. 06:00,14:00,22:00")
	}
	slices.Sort(out)
	return out, nil
}

// RecordEvent is one line of records.jsonl: one step of an alert's life.
type RecordEvent struct {
	At    contract.Time `json:"at"`
	Room  string        `json:"room"`
	Epoch string        `json:"epoch,omitempty"`
	Alert string        `json:"alert"`
	Kind  string        `json:"kind"`
	// Severity after this step (an escalation raises it).
	Severity string `json:"severity"`
	// Type: raised, escalated, repeated, reannounced, acked, cleared.
	Type  string `json:"type"`
	By    string `json:"by,omitempty"`
	Reset bool   `json:"reset,omitempty"` // cleared by the reset at the room
}

// ResponseRecord is one alert's life, as the records show it.
type ResponseRecord struct {
	Room     string `json:"room"`
	Alert    string `json:"alert"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"` // the highest it reached
	// Shift is the start of the shift in which it was raised (local time,
	// 2006-01-02T15:04).
	Shift     string        `json:"shift"`
	RaisedAt  contract.Time `json:"raised_at"`
	AckedAt   contract.Time `json:"acked_at,omitzero"`
	AckedBy   string        `json:"acked_by,omitempty"`
	ClearedAt contract.Time `json:"cleared_at,omitzero"`
	ClearedBy string        `json:"cleared_by,omitempty"`
	// Reset: cleared by the staff input at the room.
	Reset       bool `json:"reset,omitempty"`
	Repeats     int  `json:"repeats"`
	Reannounced int  `json:"reannounced"`
	// AckS is the time to acknowledge, ClearS from raise to clear (-1:
	// not yet).
	AckS   float64 `json:"ack_s"`
	ClearS float64 `json:"clear_s"`
	// Nuisance: cleared by itself before anyone acted (nobody acknowledged
	// it, nobody at the room reset it).
	Nuisance bool `json:"nuisance"`
}

// OpenRecords opens the records (reading back what the directory holds).
// An unreadable line is skipped and counted (Skipped): it does not stop
// the board.
func OpenRecords(o RecordsOptions) (*Records, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 20
	}
	if o.MaxAlerts <= 0 {
		o.MaxAlerts = 20000
	}
	if len(o.Shifts) == 0 {
		o.Shifts = DefaultShifts
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	r := &Records{dir: o.Dir, maxBytes: o.MaxBytes, maxAlerts: o.MaxAlerts, shifts: slices.Sorted(slices.Values(o.Shifts)),
		loc: o.Location, alerts: map[string]*ResponseRecord{}}
	if o.Dir == "" {
		return r, nil
	}
	var bad int
	for _, name := range []string{"records.1.jsonl", "records.jsonl"} {
		n, err := r.readFile(filepath.Join(o.Dir, name))
		if err != nil {
			return nil, err
		}
		bad += n
	}
	f, err := os.OpenFile(filepath.Join(o.Dir, "records.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open the response-time records: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open the response-time records: %w", err)
	}
	r.f, r.size, r.Skipped = f, st.Size(), bad
	return r, nil
}

func (r *Records) readFile(path string) (bad int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the response-time records: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		var e RecordEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Room == "" || e.Alert == "" {
			bad++
			continue
		}
		r.apply(e)
	}
	if err := sc.Err(); err != nil {
		return bad, fmt.Errorf("read the response-time records %s: %w", path, err)
	}
	return bad, nil
}

// Close closes the records' file.
func (r *Records) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Add records one step of an alert's life; it returns the error of
// writing it down (the record is kept in memory all the same).
func (r *Records) Add(e RecordEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply(e)
	if r.f == nil {
		return nil
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("write a response-time record: %w", err)
	}
	line = append(line, '\n')
	if r.size+int64(len(line)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			r.err = err
			return err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	if err != nil {
		r.err = fmt.Errorf("write a response-time record: %w", err)
		return r.err
	}
	return nil
}

func (r *Records) rotate() error {
	cur, old := filepath.Join(r.dir, "records.jsonl"), filepath.Join(r.dir, "records.1.jsonl")
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("rotate the response-time records: %w", err)
	}
	r.f = nil
	if err := os.Rename(cur, old); err != nil {
		return fmt.Errorf("rotate the response-time records: %w", err)
	}
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotate the response-time records: %w", err)
	}
	r.f, r.size = f, 0
	return nil
}

func recordKey(room, epoch, alert string) string { return room + "\x00" + epoch + "\x00" + alert }

var severityRank = map[string]int{"info": 0, "warning": 1, "critical": 2}

func (r *Records) apply(e RecordEvent) {
	k := recordKey(e.Room, e.Epoch, e.Alert)
	a := r.alerts[k]
	if a == nil {
		a = &ResponseRecord{Room: e.Room, Alert: e.Alert, Kind: e.Kind, Severity: e.Severity, RaisedAt: e.At, AckS: -1, ClearS: -1,
			Shift: r.shiftOf(e.At.Time).Format("2006-01-02T15:04")}
		r.alerts[k] = a
		r.order = append(r.order, k)
		if len(r.order) > r.maxAlerts {
			delete(r.alerts, r.order[0])
			r.order = r.order[1:]
		}
	}
	if severityRank[e.Severity] > severityRank[a.Severity] {
		a.Severity = e.Severity
	}
	switch e.Type {
	case "raised":
		if e.At.Before(a.RaisedAt.Time) {
			a.RaisedAt = e.At
		}
	case "repeated":
		a.Repeats++
	case "reannounced":
		a.Reannounced++
	case "acked":
		if a.AckedAt.IsZero() {
			a.AckedAt, a.AckedBy = e.At, e.By
		}
	case "cleared":
		if a.ClearedAt.IsZero() {
			a.ClearedAt, a.ClearedBy, a.Reset = e.At, e.By, e.Reset
		}
	}
	a.AckS, a.ClearS = -1, -1
	if !a.AckedAt.IsZero() {
		a.AckS = max(a.AckedAt.Sub(a.RaisedAt.Time).Seconds(), 0)
	}
	if !a.ClearedAt.IsZero() {
		a.ClearS = max(a.ClearedAt.Sub(a.RaisedAt.Time).Seconds(), 0)
	}
	a.Nuisance = !a.ClearedAt.IsZero() && a.AckedAt.IsZero() && a.ClearedBy == "" && !a.Reset
}

// shiftOf returns the start of the shift t falls in, in the site's zone.
func (r *Records) shiftOf(t time.Time) time.Time {
	lt := t.In(r.loc)
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, r.loc)
	for i := len(r.shifts) - 1; i >= 0; i-- {
		if s := midnight.Add(r.shifts[i]); !s.After(lt) {
			return s
		}
	}
	prev := midnight.AddDate(0, 0, -1)
	return prev.Add(r.shifts[len(r.shifts)-1])
}

// RoomShift sums one room's alerts of one shift.
type RoomShift struct {
	Shift    string  `json:"shift"`
	Room     string  `json:"room"`
	Alerts   int     `json:"alerts"`
	Acked    int     `json:"acked"`
	Nuisance int     `json:"nuisance"`
	AckP50S  float64 `json:"ack_p50_s"` // -1: none acknowledged
	AckMaxS  float64 `json:"ack_max_s"`
}

// RoomTotal sums one room's alerts over the period, with its nuisance
// rate: how many of its alerts needed nobody.
type RoomTotal struct {
	Room     string  `json:"room"`
	Alerts   int     `json:"alerts"`
	Nuisance int     `json:"nuisance"`
	Rate     float64 `json:"nuisance_rate"`
}

// RecordsSummary is what the board shows of its records.
type RecordsSummary struct {
	From   contract.Time    `json:"from"`
	To     contract.Time    `json:"to"`
	Alerts []ResponseRecord `json:"alerts"` // raised in [From, To), oldest first
	Shifts []RoomShift      `json:"shifts"`
	Rooms  []RoomTotal      `json:"rooms"`
}

// Between returns the alerts raised in [from, to), oldest first.
func (r *Records) Between(from, to time.Time) []ResponseRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ResponseRecord
	for _, k := range r.order {
		a := r.alerts[k]
		if !a.RaisedAt.Before(from) && a.RaisedAt.Before(to) {
			out = append(out, *a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RaisedAt.Before(out[j].RaisedAt.Time) })
	return out
}

// Summary returns the alerts raised in [from, to) and their sums per room
// and shift, and per room.
func (r *Records) Summary(from, to time.Time) RecordsSummary {
	alerts := r.Between(from, to)
	s := RecordsSummary{From: contract.T(from), To: contract.T(to), Alerts: alerts, Shifts: []RoomShift{}, Rooms: []RoomTotal{}}
	if s.Alerts == nil {
		s.Alerts = []ResponseRecord{}
	}
	type key struct{ shift, room string }
	acks := map[key][]float64{}
	shifts := map[key]*RoomShift{}
	rooms := map[string]*RoomTotal{}
	for _, a := range alerts {
		k := key{a.Shift, a.Room}
		rs := shifts[k]
		if rs == nil {
			rs = &RoomShift{Shift: a.Shift, Room: a.Room, AckP50S: -1, AckMaxS: -1}
			shifts[k] = rs
		}
		rt := rooms[a.Room]
		if rt == nil {
			rt = &RoomTotal{Room: a.Room}
			rooms[a.Room] = rt
		}
		rs.Alerts++
		rt.Alerts++
		if a.Nuisance {
			rs.Nuisance++
			rt.Nuisance++
		}
		if a.AckS >= 0 {
			rs.Acked++
			acks[k] = append(acks[k], a.AckS)
		}
	}
	for k, rs := range shifts {
		if v := acks[k]; len(v) > 0 {
			slices.Sort(v)
			rs.AckP50S, rs.AckMaxS = v[(len(v)-1)/2], v[len(v)-1]
		}
		s.Shifts = append(s.Shifts, *rs)
	}
	slices.SortFunc(s.Shifts, func(a, b RoomShift) int {
		if c := strings.Compare(a.Shift, b.Shift); c != 0 {
			return c
		}
		return strings.Compare(a.Room, b.Room)
	})
	for _, rt := range rooms {
		rt.Rate = float64(rt.Nuisance) / float64(rt.Alerts)
		s.Rooms = append(s.Rooms, *rt)
	}
	slices.SortFunc(s.Rooms, func(a, b RoomTotal) int { return strings.Compare(a.Room, b.Room) })
	return s
}

// RecordsCSVHeader are the CSV export's columns.
var RecordsCSVHeader = []string{"room", "shift", "alert", "kind", "severity", "raised_at", "acked_at", "acked_by",
	"time_to_ack_s", "cleared_at", "cleared_by", "reset_at_room", "time_to_clear_s", "repeats", "reannounced", "nuisance"}

// WriteCSV writes alerts as CSV (RFC 4180), one row each. A cell that a
// spreadsheet would take for a formula (starting with = + - @) is written
// with a leading apostrophe.
func WriteCSV(w io.Writer, alerts []ResponseRecord) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(RecordsCSVHeader); err != nil {
		return fmt.Errorf("write the records as CSV: %w", err)
	}
	secs := func(f float64) string {
		if f < 0 {
			return ""
		}
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	tm := func(t contract.Time) string {
		if t.IsZero() {
			return ""
		}
		return contract.FormatTime(t.Time)
	}
	for _, a := range alerts {
		row := []string{a.Room, a.Shift, a.Alert, a.Kind, a.Severity, tm(a.RaisedAt), tm(a.AckedAt), a.AckedBy,
			secs(a.AckS), tm(a.ClearedAt), a.ClearedBy, strconv.FormatBool(a.Reset), secs(a.ClearS),
			strconv.Itoa(a.Repeats), strconv.Itoa(a.Reannounced), strconv.FormatBool(a.Nuisance)}
		for i, c := range row {
			row[i] = safeCell(c)
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write the records as CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write the records as CSV: %w", err)
	}
	return nil
}

func safeCell(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}

// Err returns the latest error of writing the records down, and forgets it.
func (r *Records) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	r.err = nil
	return err
}
