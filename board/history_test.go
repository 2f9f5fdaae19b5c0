package board

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistoryResumesFromTheLastIDSeen(t *testing.T) {
	h := NewHistory(4, 8)
	_, _, ok := h.Subscribe("")
	assert.False(t, ok, "a fresh page needs a snapshot")
	var ids []string
	for i := 1; i <= 3; i++ {
		ids = append(ids, h.Publish("room", fmt.Appendf(nil, "%d", i)).ID)
	}
	missed, ch, ok := h.Subscribe(ids[0])
	require.True(t, ok)
	require.Len(t, missed, 2)
	assert.Equal(t, "2", string(missed[0].Data))
	assert.Equal(t, "3", string(missed[1].Data))
	h.Publish("room", []byte("4"))
	u := <-ch
	assert.Equal(t, "4", string(u.Data))

	missed, _, ok = h.Subscribe(h.Head())
	assert.True(t, ok)
	assert.Empty(t, missed)

	// Beyond what is held: a snapshot.
	h.Publish("room", []byte("5"))
	h.Publish("room", []byte("6"))
	_, _, ok = h.Subscribe(ids[0])
	assert.False(t, ok, "update 2 is no longer held")
	missed, _, ok = h.Subscribe(ids[2])
	require.True(t, ok)
	assert.Len(t, missed, 3)

	// Another process's ids, garbage, and ids from the future.
	for _, id := range []string{"deadbeef.3", "nonsense", h.Instance() + ".99", h.Instance() + ".x"} {
		_, _, ok = h.Subscribe(id)
		assert.False(t, ok, id)
	}
}

func TestHistoryDropsASlowSubscriber(t *testing.T) {
	h := NewHistory(100, 2)
	_, slow, _ := h.Subscribe("")
	assert.Equal(t, 1, h.Subscribers())
	for i := range 3 {
		h.Publish("room", fmt.Appendf(nil, "%d", i))
	}
	<-slow
	<-slow
	_, open := <-slow
	assert.False(t, open, "closed rather than blocking the board")
	assert.Equal(t, 0, h.Subscribers())
	_, ch, _ := h.Subscribe("")
	h.DropAll()
	_, open = <-ch
	assert.False(t, open)
}
