package link

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplyIndexWindowJudgedAtLookup(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	x := newReplyIndex(time.Hour, 100)
	k := replyKey("", "w1")

	reply, dup := x.claim(k, t0)
	require.Nil(t, reply)
	require.False(t, dup, "first sight: the caller applies it")
	reply, dup = x.claim(k, t0)
	assert.Nil(t, reply)
	assert.True(t, dup, "a redelivery while in flight waits for the reply")

	x.put(k, []byte("first"), t0)
	reply, _ = x.claim(k, t0.Add(59*time.Minute))
	assert.Equal(t, []byte("first"), reply, "inside the window: the stored reply")

	// No expire has run; the lookup itself must see that the hour is over.
	reply, dup = x.claim(k, t0.Add(61*time.Minute))
	assert.Nil(t, reply, "past the window: a new command")
	assert.False(t, dup)
	x.put(k, []byte("second"), t0.Add(61*time.Minute))
	x.expire(t0.Add(90 * time.Minute))
	reply, _ = x.claim(k, t0.Add(90*time.Minute))
	assert.Equal(t, []byte("second"), reply, "expire must not drop the newer reply of the same key")
	assert.Equal(t, 1, x.Len())
}

func TestReplyIndexOperatorsAreSeparate(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	x := newReplyIndex(time.Hour, 100)
	_, _ = x.claim(replyKey("", "r"), t0)
	x.put(replyKey("", "r"), []byte("booking"), t0)
	reply, dup := x.claim(replyKey("guard-7", "r"), t0)
	assert.Nil(t, reply)
	assert.False(t, dup, "guard-7's r is its own command")
}

func TestReplyIndexMaxEvictsOldest(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	x := newReplyIndex(time.Hour, 2)
	for i, id := range []string{"a", "b", "c"} {
		x.put(replyKey("", id), []byte(id), t0.Add(time.Duration(i)*time.Second))
	}
	assert.Equal(t, 2, x.Len())
	reply, _ := x.claim(replyKey("", "a"), t0.Add(3*time.Second))
	assert.Nil(t, reply, "the oldest reply went when the index was full")
	reply, _ = x.claim(replyKey("", "c"), t0.Add(3*time.Second))
	assert.Equal(t, []byte("c"), reply)
}
