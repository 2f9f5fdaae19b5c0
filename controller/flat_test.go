package controller_test

import "github.com/roomd/roomd/controller"

// stateChanged stands for Ready.StateChanged in a flattened step.
type stateChanged struct{}

// flat lists what steps asked for, one step after another, each as its
// records, outputs, state change and replies, so that tests can read a run
// as one sequence: controller.Record, controller.SetOutput, stateChanged and
// controller.Reply values.
func flat(rds ...controller.Ready) []any {
	var out []any
	for _, rd := range rds {
		for _, r := range rd.Records {
			out = append(out, r)
		}
		for _, o := range rd.Outputs {
			out = append(out, o)
		}
		if rd.StateChanged {
			out = append(out, stateChanged{})
		}
		for _, r := range rd.Replies {
			out = append(out, r)
		}
	}
	return out
}
