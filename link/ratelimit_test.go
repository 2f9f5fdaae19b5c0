package link

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
)

func TestLimiterBurstBusyCap(t *testing.T) {
	lm := newLimiter(RateLimit{PerSecond: 10, Burst: 5, CapPerSecond: 20})
	now := t0
	var got []verdict
	firsts := 0
	for range 30 {
		v, first := lm.take("guard-7", now)
		got = append(got, v)
		if first {
			firsts++
		}
	}
	count := func(want verdict) (n int) {
		for _, v := range got {
			if v == want {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 5, count(verdictPass), "the burst passes")
	assert.Equal(t, 15, count(verdictBusy), "then busy, up to the cap")
	assert.Equal(t, 10, count(verdictDrop), "beyond the cap: dropped")
	assert.Equal(t, 1, firsts, "one fault per flood")
	v, _ := lm.take("guard-8", now)
	assert.Equal(t, verdictPass, v, "another identity is not affected")
	// A second later the rate refills; the flood still counts as one until
	// the identity has been quiet.
	now = now.Add(time.Second)
	v, _ = lm.take("guard-7", now)
	assert.Equal(t, verdictPass, v)
	for range 25 {
		_, first := lm.take("guard-7", now)
		assert.False(t, first, "the same flood")
	}
	now = now.Add(QuietAfter + time.Second)
	for range 25 {
		if _, first := lm.take("guard-7", now); first {
			firsts++
		}
	}
	assert.Equal(t, 2, firsts, "a new flood after a quiet spell is told again")
}

// flood starts a room, sends it 600 get_state on floodTopic, then one
// get_state (request_id id) on otherTopic, and returns the observer of the
// room's replies, the reply to id, and the faults raised once one was.
func flood(t *testing.T, floodTopic, otherTopic, id string) (*observer, contract.ReplyMessage, []controller.Fault) {
	t.Helper()
	url := mqtttest.Embedded(t)
	obs := observe(t, url, observerOpts{filter: "visitrooms/room-a/reply"})
	r := startRoom(t, roomOpts{url: url})
	var mu sync.Mutex
	var faults []controller.Fault
	r.edge.o.Faults = func(f controller.Fault) { mu.Lock(); faults = append(faults, f); mu.Unlock() }
	for i := range 600 {
		obs.publish(floodTopic, fmt.Sprintf(`{"request_id":"f-%d","action":"get_state"}`, i), false)
	}
	obs.publish(otherTopic, `{"request_id":"`+id+`","action":"get_state"}`, false)
	rep := obs.next("reply", func(m obsMsg) bool { return strings.Contains(string(m.Payload), `"`+id+`"`) })
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(faults) > 0 }, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	return obs, strictReply(t, rep.Payload), slices.Clone(faults)
}

// TestFloodingIdentityIsLimited: one identity floods; it gets busy and then
// nothing, one commands fault names it, and another identity's get_state is
// answered at once.
func TestFloodingIdentityIsLimited(t *testing.T) {
	obs, rep, faults := flood(t, "visitrooms/room-a/cmd/flooder", "visitrooms/room-a/cmd/guard-7", "g-1")
	assert.True(t, rep.OK, "another identity is answered")
	require.Len(t, faults, 1, "one fault for the flood")
	assert.Equal(t, contract.SourceCommands, faults[0].Source)
	assert.Contains(t, faults[0].Detail, `"flooder"`)
	// A busy answer names the command's action, as every refusal whose
	// action can be read does.
	busy := 0
	for _, m := range obs.drain("reply") {
		if rp := strictReply(t, m.Payload); rp.Error != nil && rp.Error.Code == string(contract.CodeBusy) {
			busy++
			assert.Equal(t, "get_state", rp.Action, "%s", m.Payload)
		}
	}
	assert.NotZero(t, busy, "the flooder was answered busy before its commands were dropped")
}

// TestEmptyOperatorLevelHasItsOwnLimit: a flood on cmd/ (an operator topic
// with an empty level, which no identity may use) does not make commands
// on the plain cmd topic busy; its fault names the topic it came on.
func TestEmptyOperatorLevelHasItsOwnLimit(t *testing.T) {
	_, rep, faults := flood(t, "visitrooms/room-a/cmd/", "visitrooms/room-a/cmd", "b-1")
	assert.True(t, rep.OK, "the plain cmd topic is answered: %+v", rep)
	require.Len(t, faults, 1, "one fault for the flood")
	assert.Contains(t, faults[0].Detail, "the cmd/ topic with an empty level")
}
