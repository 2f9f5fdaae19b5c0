package siteworld

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/journal"
)

// Key names a record at the centre: a room's id is unique only within its
// site. With Seq 0 it names a room's epoch, the seq space of its records.
type Key struct {
	Site, Room, Epoch string
	Seq               uint64
}

func (k Key) String() string {
	return fmt.Sprintf("%s/%s %s#%d", k.Site, k.Room, k.Epoch, k.Seq)
}

// epoch returns the room's epoch k belongs to.
func (k Key) epoch() Key {
	k.Seq = 0
	return k
}

// journalRecords returns every record a room's journal holds: the ground
// truth of what must reach the centre. Alert records must arrive on the
// alerts topic as well (alerts).
func journalRecords(site, room string, j *journal.Journal) (all, alerts []Key) {
	for lsn := j.First(); lsn != 0 && lsn <= j.Last(); lsn++ {
		e, err := j.Get(lsn)
		if err != nil {
			continue
		}
		for _, r := range e.Records {
			k := Key{Site: site, Room: room, Epoch: e.Epoch.String(), Seq: r.Seq}
			all = append(all, k)
			if r.Type.IsAlert() {
				alerts = append(alerts, k)
			}
		}
	}
	return all, alerts
}

// topicKind is the stream a record came on.
type topicKind uint8

const (
	onEvents topicKind = iota // the complete stream of a room's records
	onAlerts                  // the alert records again
)

// gap is a run of seqs of one room's epoch that the booking system has not
// received on events.
type gap struct {
	Room     Key // the room's epoch (Seq 0)
	From, To uint64
}

// resendAfter is how long a replay request may go unanswered before the
// seqs it asked for are asked for again.
const resendAfter = 5 * time.Second

// ledger is the booking system's bookkeeping, apart from MQTT: the first
// arrival of every record on each stream, the duplicates, how far each
// room's records are known to go, the gaps and the replays asked for them,
// and the progress towards what Expect says must arrive. It is not safe for
// concurrent use: Consumer holds it under its lock.
type ledger struct {
	events, alerts map[Key]time.Time // first arrival on each stream
	types          map[Key]string
	dups           int
	latest         map[Key]uint64    // room's epoch → highest seq known (records, states, expectations)
	asked          map[Key]time.Time // seq → when a replay last asked for it
	replays        int               // replay requests sent
	recovered      int               // records that first arrived on events after a replay asked for them

	// Towards the expectation (expect): each room's epoch's last seq to
	// wait for, how far its records have arrived without a gap, how many
	// are still short, and when the records came.
	target  map[Key]uint64
	prefix  map[Key]uint64
	behind  int
	first   time.Time   // first record after expect
	arrived []time.Time // every record after expect until caught, as it arrived
	caught  time.Time   // when the last room reached its target
}

func newLedger() *ledger {
	return &ledger{events: map[Key]time.Time{}, alerts: map[Key]time.Time{}, types: map[Key]string{},
		latest: map[Key]uint64{}, asked: map[Key]time.Time{}, target: map[Key]uint64{}, prefix: map[Key]uint64{}}
}

// add notes record k (of type typ) as it arrived on a stream at now, and
// reports whether it was the first copy on that stream.
func (l *ledger) add(on topicKind, k Key, typ string, now time.Time) bool {
	if len(l.target) > 0 {
		if l.first.IsZero() {
			l.first = now
		}
		if l.caught.IsZero() {
			l.arrived = append(l.arrived, now)
		}
	}
	seen := l.events
	if on == onAlerts {
		seen = l.alerts
	}
	if _, dup := seen[k]; dup {
		l.dups++
		return false
	}
	seen[k] = now
	l.types[k] = typ
	l.known(k)
	if on != onEvents {
		return true
	}
	if _, ok := l.asked[k]; ok {
		l.recovered++
	}
	room := k.epoch()
	before := l.prefix[room]
	p := before
	for {
		next := room
		next.Seq = p + 1
		if _, ok := l.events[next]; !ok {
			break
		}
		p++
	}
	l.prefix[room] = p
	if t, ok := l.target[room]; ok && before < t && p >= t {
		l.behind--
		if l.behind == 0 {
			l.caught = now
		}
	}
	return true
}

// known notes that seq k exists in its room's epoch (a record, or a state
// naming its latest seq).
func (l *ledger) known(k Key) {
	room := k.epoch()
	l.latest[room] = max(l.latest[room], k.Seq)
}

// expect sets what must arrive: every record of keys, on events. It starts
// the catch-up figures afresh.
func (l *ledger) expect(keys []Key) {
	l.first, l.caught, l.behind, l.arrived = time.Time{}, time.Time{}, 0, nil
	last := map[Key]uint64{}
	for _, k := range keys {
		room := k.epoch()
		last[room] = max(last[room], k.Seq)
		l.known(k)
	}
	for room, t := range last {
		l.target[room] = t
		if l.prefix[room] < t {
			l.behind++
		}
	}
}

// gaps returns the runs of seqs missing on events, up to the latest seq
// known of each room's epoch, for the rooms of sites up reports connected;
// at most contract.MaxReplay seqs a run, and none asked for less than
// resendAfter ago. It notes them as asked at now.
func (l *ledger) gaps(now time.Time, up func(site string) bool) []gap {
	var out []gap
	rooms := make([]Key, 0, len(l.latest))
	for room := range l.latest {
		rooms = append(rooms, room)
	}
	slices.SortFunc(rooms, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Site, b.Site), cmp.Compare(a.Room, b.Room), cmp.Compare(a.Epoch, b.Epoch))
	})
	for _, room := range rooms {
		last := l.latest[room]
		if !up(room.Site) {
			continue
		}
		var g *gap
		for seq := uint64(1); seq <= last; seq++ {
			k := room
			k.Seq = seq
			if _, ok := l.events[k]; ok {
				if g != nil {
					out = append(out, *g)
					g = nil
				}
				continue
			}
			if at, ok := l.asked[k]; ok && now.Sub(at) < resendAfter {
				continue
			}
			if g == nil {
				g = &gap{Room: room, From: seq}
			}
			g.To = seq
			l.asked[k] = now
			if g.To-g.From+1 == contract.MaxReplay {
				out = append(out, *g)
				g = nil
			}
		}
		if g != nil {
			out = append(out, *g)
		}
	}
	l.replays += len(out)
	return out
}

// missing returns the keys of all not yet received on events, and those of
// alerts not yet received on alerts.
func (l *ledger) missing(all, alerts []Key) (events, alertsMissing []Key) {
	for _, k := range all {
		if _, ok := l.events[k]; !ok {
			events = append(events, k)
		}
	}
	for _, k := range alerts {
		if _, ok := l.alerts[k]; !ok {
			alertsMissing = append(alertsMissing, k)
		}
	}
	return events, alertsMissing
}

// drainRate returns the records per second since expect, second by second
// from the first: the median second and the busiest.
func (l *ledger) drainRate() (median, busiest int) {
	if len(l.arrived) == 0 {
		return 0, 0
	}
	var per []int
	for _, at := range l.arrived {
		i := int(at.Sub(l.arrived[0]) / time.Second)
		for len(per) <= i {
			per = append(per, 0)
		}
		per[i]++
	}
	busiest = slices.Max(per)
	slices.Sort(per)
	return per[len(per)/2], busiest
}
