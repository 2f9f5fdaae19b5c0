package room

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/link"
)

// WitnessWait bounds how long a starting room waits for the broker and its
// own retained state before it runs without them.
const WitnessWait = 3 * time.Second

// witnessQuiet is how long after the subscription a retained state must
// have come (the broker sends it right after its SUBACK) before the room
// takes it that there is none.
const witnessQuiet = 250 * time.Millisecond

// watchWitness adds the room's own state topic to the watched topics and
// wraps next so that its first retained message goes to out.
func watchWitness(stateTopic string, watch []string, next func(link.Message), out chan<- contract.StateMessage) ([]string, func(link.Message)) {
	return append(watch, stateTopic), func(m link.Message) {
		if m.Kind == link.KindWatched && m.Topic == stateTopic {
			var st contract.StateMessage
			if m.Retained && json.Unmarshal(m.Payload, &st) == nil {
				select {
				case out <- st:
				default:
				}
			}
			return
		}
		next(m)
	}
}

// checkWitness compares the journal with what the room already announced,
// before anything is published: the broker's retained state names the
// latest record the room published (its seq; seqs only grow for the life
// of a room, across epochs). A journal whose highest seq is below it went
// back in time (a card restored from an older image, a clone, a copy put
// back): its seqs and alert numbers would name records consumers already
// hold. The room then continues in a new epoch above the witness and never
// publishes what the old journal still held unpublished, and the journal
// fault says why.
//
// When the broker cannot be reached within WitnessWait the journal cannot
// be checked: the room continues in a new epoch (its new records cannot
// collide with any key the broker's consumers hold) and says so in the
// journal fault; what the journal held unpublished goes out under its own
// keys when the broker comes back. A room never waits longer than
// WitnessWait for the broker: its inputs and outputs run meanwhile.
func (r *Room) checkWitness(ctx context.Context) {
	t := time.NewTimer(WitnessWait)
	defer t.Stop()
	var quiet <-chan time.Time
	subscribed := r.client.Subscribed()
	for {
		_, _, up, ok := r.client.Conn()
		if ok {
			up = nil
		}
		select {
		case <-subscribed:
			q := time.NewTimer(witnessQuiet)
			defer q.Stop()
			quiet, subscribed = q.C, nil
			continue
		case st := <-r.witness:
			r.judgeWitness(st)
			return
		case <-quiet:
			r.log.Info("no retained state on the broker: nothing to check the journal against (a new room, or the broker lost it)")
			return
		case <-up:
		case <-t.C:
			seq := r.j.SeqMax()
			r.log.Warn("the broker could not be reached at start: the journal cannot be checked against what the room announced; records continue in a new epoch", "wait", WitnessWait)
			if err := r.j.Rebase(seq, fmt.Sprintf("the broker could not be reached within %s at start, so the journal could not be checked against what the room had announced: new records go in a new epoch, whose keys no consumer holds", WitnessWait), "", false); err != nil {
				r.log.Error("journal: the new epoch could not be written to the head", "err", err)
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

func (r *Room) judgeWitness(st contract.StateMessage) {
	have := r.j.SeqMax()
	if st.Seq <= have {
		r.log.Info("journal checked against the broker's retained state", "witness_seq", st.Seq, "journal_seq", have)
		return
	}
	floor := st.Seq + journal.ReserveBlock
	r.log.Error("the journal is behind what the room already announced (restored from an older copy?): records continue in a new epoch above it",
		"witness_epoch", st.Epoch, "witness_seq", st.Seq, "journal_seq", have)
	reason := fmt.Sprintf("the journal went back in time: the broker holds this room's state at seq %d (epoch %s), the journal only up to seq %d (a card restored from an older image, or a copy put back); records continue in a new epoch above seq %d, and what the old journal held unpublished is not published",
		st.Seq, st.Epoch, have, floor)
	lost := fmt.Sprintf("everything the room announced after seq %d before this start (up to seq %d at least: visits, alerts) is not in its journal; consumers hold it", have, st.Seq)
	if err := r.j.Rebase(floor, reason, lost, true); err != nil {
		r.log.Error("journal: the new epoch could not be written to the head", "err", err)
	}
}
