package roomclient

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	ep1 = "00000000000000a1"
	ep2 = "00000000000000b2"
)

func TestTrackerInOrderAndDuplicates(t *testing.T) {
	tr := NewTracker()
	for seq := uint64(5); seq <= 8; seq++ {
		assert.Equal(t, Observation{Verdict: New}, tr.Observe("r1", ep1, seq), "seq %d", seq)
	}
	// A reconnection sends some again; the alerts copy of a record too.
	for _, seq := range []uint64{6, 7, 8, 8} {
		assert.Equal(t, Duplicate, tr.Observe("r1", ep1, seq).Verdict, "seq %d", seq)
	}
	assert.Equal(t, Duplicate, tr.Observe("r1", ep1, 0).Verdict, "seq 0 is no record")
	// Rooms are independent.
	assert.Equal(t, New, tr.Observe("r2", ep1, 6).Verdict)
	assert.Equal(t, map[string]Mark{"r1": {ep1, 8}, "r2": {ep1, 6}}, tr.Marks())
	assert.Empty(t, tr.Missing())
}

func TestTrackerGapsAndFills(t *testing.T) {
	tr := NewTracker()
	tr.Observe("r1", ep1, 1)
	obs := tr.Observe("r1", ep1, 5)
	assert.Equal(t, New, obs.Verdict)
	require.NotNil(t, obs.Gap)
	assert.Equal(t, Gap{Room: "r1", Epoch: ep1, Range: Range{2, 4}}, *obs.Gap)
	assert.Nil(t, tr.Observe("r1", ep1, 6).Gap)
	obs = tr.Observe("r1", ep1, 9)
	require.NotNil(t, obs.Gap)
	assert.Equal(t, Range{7, 8}, obs.Gap.Range)
	assert.Equal(t, []Gap{{"r1", ep1, Range{2, 4}}, {"r1", ep1, Range{7, 8}}}, tr.Missing())

	// A replay fills the middle of a range: it splits.
	assert.Equal(t, Filled, tr.Observe("r1", ep1, 3).Verdict)
	assert.True(t, tr.IsMissing("r1", ep1, 2))
	assert.False(t, tr.IsMissing("r1", ep1, 3))
	assert.Equal(t, []Gap{{"r1", ep1, Range{2, 2}}, {"r1", ep1, Range{4, 4}}, {"r1", ep1, Range{7, 8}}}, tr.Missing())
	assert.Equal(t, Duplicate, tr.Observe("r1", ep1, 3).Verdict, "a second replayed copy")
	for _, seq := range []uint64{2, 4, 8, 7} {
		assert.Equal(t, Filled, tr.Observe("r1", ep1, seq).Verdict, "seq %d", seq)
	}
	assert.Empty(t, tr.Missing())

	// Forget gives a range up: its seqs count as seen.
	tr.Observe("r1", ep1, 20)
	tr.Forget(Gap{Room: "r1", Epoch: ep1, Range: Range{10, 15}})
	assert.Equal(t, []Gap{{"r1", ep1, Range{16, 19}}}, tr.Missing())
	assert.Equal(t, Duplicate, tr.Observe("r1", ep1, 12).Verdict)
}

func TestTrackerStateRevealsTheTail(t *testing.T) {
	tr := NewTracker()
	assert.Equal(t, Observation{}, tr.ObserveState("r1", ep1, 9), "no baseline yet: a retained state may overtake queued records")
	tr.Observe("r1", ep1, 3)
	assert.Equal(t, Observation{}, tr.ObserveState("r1", ep1, 3))
	assert.Equal(t, Observation{}, tr.ObserveState("r1", ep1, 2), "an older state")
	assert.Equal(t, Observation{}, tr.ObserveState("r1", ep2, 9), "another epoch's state decides nothing")
	obs := tr.ObserveState("r1", ep1, 6)
	require.NotNil(t, obs.Gap)
	assert.Equal(t, Gap{"r1", ep1, Range{4, 6}}, *obs.Gap)
	assert.Equal(t, Filled, tr.Observe("r1", ep1, 6).Verdict)
	assert.Equal(t, New, tr.Observe("r1", ep1, 7).Verdict)
}

func TestTrackerNewEpoch(t *testing.T) {
	tr := NewTracker()
	tr.Observe("r1", ep1, 40)
	tr.Observe("r1", ep1, 43) // 41-42 missing
	obs := tr.Observe("r1", ep2, 12)
	assert.Equal(t, Observation{Verdict: New, NewEpoch: true, PrevEpoch: ep1}, obs, "detection starts afresh: no gap below 12")
	assert.Equal(t, New, tr.Observe("r1", ep2, 13).Verdict)
	assert.Equal(t, Mark{ep2, 13}, tr.Marks()["r1"])
	// Seq numbers of the old epoch may come again in the new one: they are
	// new records there, and late copies of the old epoch are still known.
	assert.Equal(t, New, tr.Observe("r1", ep2, 14).Verdict)
	assert.Equal(t, Duplicate, tr.Observe("r1", ep1, 40).Verdict)
	assert.Equal(t, Filled, tr.Observe("r1", ep1, 42).Verdict, "the old epoch's gap can still be replayed")
	assert.Equal(t, []Gap{{"r1", ep1, Range{41, 41}}}, tr.Missing())

	// Only a few epochs are kept.
	for i, ep := range []string{"c3", "d4", "e5", "f6"} {
		assert.True(t, tr.Observe("r1", ep, uint64(i+1)).NewEpoch)
	}
	assert.True(t, tr.Observe("r1", ep1, 40).NewEpoch, "an epoch forgotten long ago is new again")
}

func TestTrackerResume(t *testing.T) {
	tr := NewTracker()
	tr.Resume("r1", Mark{Epoch: ep1, Seq: 10})
	assert.Equal(t, Duplicate, tr.Observe("r1", ep1, 10).Verdict, "redelivered after the restart")
	obs := tr.Observe("r1", ep1, 14)
	require.NotNil(t, obs.Gap)
	assert.Equal(t, Range{11, 13}, obs.Gap.Range)
	// A resumed room seen with a new epoch.
	tr.Resume("r2", Mark{Epoch: ep1, Seq: 10})
	assert.True(t, tr.Observe("r2", ep2, 1).NewEpoch)
}

func TestTrackerBoundsMissingRanges(t *testing.T) {
	tr := &Tracker{MaxRanges: 3}
	tr.Observe("r1", ep1, 1)
	var dropped []Gap
	for seq := uint64(3); seq <= 11; seq += 2 {
		if d := tr.Observe("r1", ep1, seq).Dropped; d != nil {
			dropped = append(dropped, *d)
		}
	}
	assert.Equal(t, []Gap{{"r1", ep1, Range{2, 2}}, {"r1", ep1, Range{4, 4}}}, dropped)
	assert.Len(t, tr.Missing(), 3)
	assert.Equal(t, Duplicate, tr.Observe("r1", ep1, 2).Verdict, "a dropped seq counts as seen")
}

// TestTrackerDeliversEachRecordOnce shuffles copies of a room's records
// (every seq at least once, some many times, some only through a later
// "replay") and checks that each seq is delivered exactly once and that
// what is reported missing is exactly what has not come yet.
func TestTrackerDeliversEachRecordOnce(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		const n = 60
		var stream []uint64
		for seq := uint64(1); seq <= n; seq++ {
			if rng.IntN(5) == 0 {
				continue // lost; replayed below
			}
			for range 1 + rng.IntN(3) {
				stream = append(stream, seq)
			}
		}
		// Copies of earlier records come back after a reconnection.
		for i := 0; i < len(stream); i++ {
			if rng.IntN(10) == 0 {
				stream = append(stream[:i+1], append([]uint64{stream[rng.IntN(i+1)]}, stream[i+1:]...)...)
				i++
			}
		}
		tr := NewTracker()
		delivered := map[uint64]int{}
		for _, seq := range stream {
			if v := tr.Observe("r", ep1, seq).Verdict; v != Duplicate {
				delivered[seq]++
			}
		}
		high := uint64(0)
		for seq := range delivered {
			high = max(high, seq)
		}
		var want []uint64
		for seq := uint64(1); seq <= high; seq++ {
			if delivered[seq] == 0 && seq > stream[0] {
				want = append(want, seq)
			}
		}
		var got []uint64
		for _, g := range tr.Missing() {
			for seq := g.From; seq <= g.To; seq++ {
				got = append(got, seq)
			}
		}
		require.Equal(t, want, got, "seed %d: missing", seed)
		// The replay brings every missing seq, twice.
		for _, seq := range append(got, got...) {
			if v := tr.Observe("r", ep1, seq).Verdict; v != Duplicate {
				delivered[seq]++
			}
		}
		for seq, n := range delivered {
			require.Equal(t, 1, n, "seed %d: seq %d delivered %d times", seed, seq, n)
		}
		require.Empty(t, tr.Missing(), "seed %d", seed)
	}
}
