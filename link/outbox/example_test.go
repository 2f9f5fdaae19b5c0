package outbox_test

import (
	"fmt"
	"os"

	"github.com/roomd/roomd/link/outbox"
)

func Example() {
	dir, _ := os.MkdirTemp("", "outbox")
	defer os.RemoveAll(dir)

	ob, err := outbox.Open(dir, outbox.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if r := ob.Recovered(); r.Dropped > 0 {
		fmt.Println("raise alert: outbox lost", r.Dropped, "messages")
	}
	// Republish whatever survived the last run, then append new messages.
	for _, e := range ob.Pending() {
		_ = e // publish e.Topic, e.Payload, QoS 1, e.Retained; Ack(e.ID) on PUBACK
	}
	e, err := ob.Append("roomd/room-1/alert", []byte(`{"kind":"panic"}`), false)
	if err != nil {
		fmt.Println(err) // outbox.ErrFull: raise a local alarm, do not drop silently
		return
	}
	// ... publish, and on PUBACK:
	_ = ob.Ack(e.ID)
	fmt.Println(e.ID, ob.Len())
	_ = ob.Close()
	// Output: 1 0
}
