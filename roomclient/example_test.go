package roomclient_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/link/broker"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/roomclient"
)

// demoRoom starts an in-process broker and a simulated room "room-1" on
// it, as roomd run would with configs/demo.yaml, and returns the broker's
// URL and a function that stops both.
func demoRoom() (url string, stop func()) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "roomclient-example-")
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := configs.Parse(fmt.Appendf(nil, "room: room-1\nstate_dir: %s\npolicy: {preset: italy}\ndevice: {backend: sim}\nmqtt: {broker: %q}\n",
		dir, b.URL()), "example")
	if err != nil {
		log.Fatal(err)
	}
	r, err := room.Open(room.Options{Config: cfg, Version: "1.4.0"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return b.URL(), func() {
		cancel()
		<-done
		_ = b.Close()
		_ = os.RemoveAll(dir)
	}
}

// A booking system starts, extends and ends a visit. Send waits for each
// reply, sending the same command again while none comes.
func Example() {
	url, stop := demoRoom()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c, err := roomclient.Dial(ctx, roomclient.Options{Broker: url, ClientID: "booking"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, cmd := range []roomclient.Command{
		roomclient.StartVisit("B-1742", 90*time.Minute),
		roomclient.StartVisit("B-1743", time.Hour),
		roomclient.ExtendVisit(15 * time.Minute),
		roomclient.ExtendVisit(time.Hour),
		roomclient.EndVisit(),
	} {
		reply, err := c.Send(ctx, "room-1", cmd)
		if err != nil {
			log.Fatal(err)
		}
		if err := reply.Err(); err != nil {
			fmt.Printf("%s: %v\n", reply.Action, err)
			continue
		}
		fmt.Printf("%s: ok, phase %s", reply.Action, reply.State.Phase)
		if v := reply.State.Visit; v != nil {
			fmt.Printf(", visit %s of %s", v.ID, v.EndsAt.Sub(v.StartedAt.Time))
		}
		fmt.Println()
	}
	// Output:
	// start_visit: ok, phase in_visit, visit B-1742 of 1h30m0s
	// start_visit: refused: visit_in_progress: a visit is already running
	// extend_visit: ok, phase in_visit, visit B-1742 of 1h45m0s
	// extend_visit: refused: exceeds_maximum: extension by 1h0m0s would make the visit 2h45m0s, above the maximum 2h0m0s
	// end_visit: ok, phase idle
}

// A console receives every record once, in order, and the room list.
func ExampleOptions_onRecord() {
	url, stop := demoRoom()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	records := make(chan roomclient.Record, 64)
	infos := make(chan roomclient.Message, 4)
	c, err := roomclient.Dial(ctx, roomclient.Options{
		Broker: url, ClientID: "guard-station", Streams: roomclient.RegistryStreams,
		OnRecord: func(r roomclient.Record) { records <- r }, // must not block
		OnMessage: func(m roomclient.Message) {
			if m.Kind == roomclient.KindInfo {
				select {
				case infos <- m:
				default:
				}
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Send(ctx, "room-1", roomclient.StartVisit("B-1744", time.Hour)); err != nil {
		log.Fatal(err)
	}
	for r := range records {
		if r.Type == "visit_started" {
			fmt.Printf("%s: %s %s, planned %ds\n", r.Room, r.Type, r.VisitID, *r.DurationS)
			break
		}
	}
	<-infos // the room's info, published at every connection
	for _, r := range c.Rooms() {
		fmt.Printf("%s: %s, roomd %s, contract %d, policy %s (max %ds, extension %s)\n", r.ID, r.Availability,
			r.Info.Roomd, r.Info.Version, r.Info.Policy.Name, r.Info.Policy.MaxDurationS, r.Info.Policy.Extension)
	}
	// Output:
	// room-1: visit_started B-1744, planned 3600s
	// room-1: online, roomd 1.4.0, contract 2, policy italy (max 7200s, extension up_to_max)
}

// The tracker alone, fed by hand: duplicates dropped, a gap found and
// filled by a replay.
func ExampleTracker() {
	tr := roomclient.NewTracker()
	const epoch = "5f0c2a9e81d4b377"
	for _, seq := range []uint64{7, 8, 8, 11, 9, 10} {
		obs := tr.Observe("room-1", epoch, seq)
		fmt.Printf("seq %d: %s", seq, obs.Verdict)
		if obs.Gap != nil {
			fmt.Printf(", missing %d to %d", obs.Gap.From, obs.Gap.To)
		}
		fmt.Println()
	}
	fmt.Println("still missing:", len(tr.Missing()), "mark:", tr.Marks()["room-1"].Seq)
	// Output:
	// seq 7: new
	// seq 8: new
	// seq 8: duplicate
	// seq 11: new, missing 9 to 10
	// seq 9: filled
	// seq 10: filled
	// still missing: 0 mark: 11
}

// The registry alone: which rooms exist, whether they are online, and
// whether one has gone quiet.
func ExampleRegistry() {
	g := roomclient.NewRegistry()
	now := time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC)
	g.Apply(roomclient.Message{Kind: roomclient.KindAvailability, Room: "room-1", Arrived: now, Payload: []byte("online")})
	g.Apply(roomclient.Message{Kind: roomclient.KindState, Room: "room-1", Arrived: now,
		Payload: []byte(`{"version":2,"room":"room-1","epoch":"5f0c2a9e81d4b377","seq":12,"at":"2026-03-04T14:00:00.000Z","phase":"idle","visit":null,"door":"closed","lock":"unlocked","alerts":[],"service_reason":"","outputs":{}}`)})
	g.Apply(roomclient.Message{Kind: roomclient.KindAvailability, Room: "room-2", Arrived: now, Payload: []byte("offline")})
	for _, at := range []time.Time{now.Add(time.Minute), now.Add(61 * time.Second)} {
		for _, r := range g.Rooms(at) {
			fmt.Printf("%s %s: %s, stale %t\n", at.Format("15:04:05"), r.ID, r.Availability, r.Stale)
		}
	}
	// Output:
	// 14:01:00 room-1: online, stale false
	// 14:01:00 room-2: offline, stale false
	// 14:01:01 room-1: online, stale true
	// 14:01:01 room-2: offline, stale false
}
