package link

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/wallclock"
)

func BenchmarkEncodeState(b *testing.B) {
	ctrl, _, err := controller.New(testPolicy(), t0)
	require.NoError(b, err)
	ctrl.Step(controller.Command{At: t0, RequestID: "s", Action: controller.ActionStartVisit, VisitID: "v-1", Duration: time.Hour})
	ctrl.Step(controller.InputChanged{At: t0, Input: controller.InputPanic, Level: controller.LevelActive})
	st := ctrl.State()
	b.ReportAllocs()
	for b.Loop() {
		_ = contract.EncodeState("room-a", 1, st)
	}
}

// BenchmarkAppendToPUBACK measures one record from the journal append (one
// sync) to the broker's acknowledgement recorded in the journal, through the
// publisher and the embedded broker on loopback.
func BenchmarkAppendToPUBACK(b *testing.B) {
	url := mqtttest.Embedded(b)
	j, err := journal.Open(b.TempDir(), journal.Options{})
	require.NoError(b, err)
	defer j.Close()
	topics, err := contract.NewTopics("", "room-a")
	require.NoError(b, err)
	var c *Client
	p, err := NewPublisher(PublisherOptions{Room: "room-a", Topics: topics, Journal: j, Conn: lazyConn{&c}, Now: wallclock.Now})
	require.NoError(b, err)
	c, err = New(Options{Broker: url, ClientID: "bench", Topics: topics, Handler: func(Message) {}}, nil)
	require.NoError(b, err)
	defer func() { _ = c.Close(context.Background()) }()
	go p.Run()
	defer p.Close()
	select {
	case <-c.subscribed:
	case <-time.After(waitTimeout):
		b.Fatal("not connected")
	}
	rec := controller.Record{At: t0, Type: controller.EventDoorOpened}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec.Seq = uint64(i + 1)
		e := &journal.Entry{At: t0, Records: []controller.Record{rec}}
		require.NoError(b, j.Append(e))
		for j.Acked().LSN <= e.LSN {
			<-j.Changed()
		}
	}
}
