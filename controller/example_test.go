package controller_test

import (
	"fmt"
	"os"
	"time"

	"github.com/roomd/roomd/controller"
)

func readFile(t interface{ Fatal(...any) }, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A driver feeds events stamped with their own time and carries out the
// actions; it arms one timer for NextDeadline.
func Example() {
	p := controller.Policy{
		Name: "example", MaxDuration: 2 * time.Hour, Warnings: []time.Duration{10 * time.Minute},
		EscalateAfter: 2 * time.Minute, RepeatEvery: time.Minute, ReannounceAfter: 5 * time.Minute,
		LockGrace: 10 * time.Second, VacateTimeout: 10 * time.Minute,
	}
	start := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	c, _, err := controller.New(p, start)
	if err != nil {
		panic(err)
	}
	c.Step(controller.InputChanged{At: start, Input: controller.InputLock, Level: controller.LevelInactive})
	c.Step(controller.Command{At: start, RequestID: "r1", Action: controller.ActionStartVisit, VisitID: "v-42", Duration: time.Hour})

	next, _ := c.NextDeadline()
	fmt.Println("next deadline:", next.Sub(start))
	rd := c.Step(controller.Tick{At: next})
	for _, o := range rd.Outputs {
		fmt.Println("output:", o.Output, o.Mode, o.Pulses)
	}
	for _, r := range rd.Records {
		fmt.Println("announce:", r.Type, r.Remaining)
	}
	// Output:
	// next deadline: 50m0s
	// output: warning on 1
	// announce: visit_warning 10m0s
}

// Commands the policy or the phase do not allow are refused with a code.
func ExampleController_Step_refusal() {
	p := controller.Policy{
		Name: "example", MaxDuration: 2 * time.Hour, Extension: controller.ExtensionForbidden,
		EscalateAfter: time.Minute, RepeatEvery: time.Minute, ReannounceAfter: time.Minute, VacateTimeout: time.Minute,
	}
	at := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	c, _, _ := controller.New(p, at)
	for _, cmd := range []controller.Command{
		{At: at, RequestID: "a", Action: controller.ActionStartVisit, VisitID: "v1", Duration: 3 * time.Hour},
		{At: at, RequestID: "b", Action: controller.ActionStartVisit, VisitID: "v1", Duration: time.Hour},
		{At: at, RequestID: "c", Action: controller.ActionExtendVisit, Duration: 10 * time.Minute},
	} {
		for _, r := range c.Step(cmd).Replies {
			fmt.Printf("%s %s ok=%t code=%q\n", r.RequestID, r.Action, r.OK(), r.Code)
		}
	}
	// Output:
	// a start_visit ok=false code="invalid_duration"
	// b start_visit ok=true code=""
	// c extend_visit ok=false code="extension_forbidden"
}

// The state that leaves the device carries presence only outside visits.
func ExampleController_State() {
	p := controller.Policy{
		Name: "example", MaxDuration: 2 * time.Hour,
		EscalateAfter: time.Minute, RepeatEvery: time.Minute, ReannounceAfter: time.Minute, VacateTimeout: time.Minute,
	}
	at := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	c, _, _ := controller.New(p, at)
	c.Step(controller.InputChanged{At: at, Input: controller.InputPresence, Level: controller.LevelActive})
	fmt.Println("idle, presence shown:", c.State().Presence != nil)
	c.Step(controller.Command{At: at, RequestID: "r", Action: controller.ActionStartVisit, VisitID: "v1", Duration: time.Hour})
	fmt.Println("in visit, presence shown:", c.State().Presence != nil)
	// Output:
	// idle, presence shown: true
	// in visit, presence shown: false
}
