package link

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/link/outbox"
)

func BenchmarkDecodeCommand(b *testing.B) {
	p := []byte(`{"request_id":"b-1001","action":"start_visit","visit_id":"v-42","duration":"1h30m","expires_at":"2099-01-01T00:00:00Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, cerr := DecodeCommand(p, 0, now); cerr != nil {
			b.Fatal(cerr)
		}
	}
}

func BenchmarkEncodeState(b *testing.B) {
	ctrl, _, err := controller.New(testPolicy(), t0)
	require.NoError(b, err)
	ctrl.Step(controller.Command{At: t0, RequestID: "s", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour})
	ctrl.Step(controller.InputChanged{At: t0, Input: controller.InputPanic, Level: controller.LevelActive})
	st := ctrl.State()
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeState("room-a", st)
	}
}

// BenchmarkPublishToPUBACK measures one record from Publish (fsync'd
// outbox append) to the broker's acknowledgement (outbox ack), through the
// embedded broker on loopback.
func BenchmarkPublishToPUBACK(b *testing.B) {
	url := mqtttest.Embedded(b)
	ob, err := outbox.Open(filepath.Join(b.TempDir(), "outbox"), outbox.Limits{})
	require.NoError(b, err)
	defer func() { _ = ob.Close() }()
	topics, err := NewTopics("", "room-a")
	require.NoError(b, err)
	c, err := New(Options{Broker: url, ClientID: "bench", Topics: topics, Outbox: ob}, nil)
	require.NoError(b, err)
	defer func() { _ = c.Close(context.Background()) }()
	select {
	case <-c.subscribed:
	case <-time.After(waitTimeout):
		b.Fatal("not connected")
	}
	rec := controller.Record{At: t0, Type: controller.EventDoorOpened}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec.Seq = uint64(i + 1)
		require.NoError(b, c.Publish(rec))
		require.NoError(b, c.Flush(ctx))
	}
}
