package sim

import (
	"slices"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
)

// Apply carries out c on the room: heal and unstick, levels (in
// controller.Inputs order), points (by name), fault, wires (by target),
// stick, bounce. It
// stops at the first error, which names the input, point or output.
func (r *Room) Apply(c contract.SimControl) error {
	if c.Heal != 0 {
		if err := r.setFaultAt(c.Heal, c.HealPoint, false); err != nil {
			return err
		}
	}
	if c.Unstick != 0 {
		if err := r.StickFeedback(c.Unstick, false); err != nil {
			return err
		}
	}
	for _, in := range controller.Inputs {
		l, ok := c.Levels[in]
		if !ok {
			continue
		}
		if err := r.SetInput(in, l); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(c.Points))
	for name := range c.Points {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := r.SetPoint(name, c.Points[name]); err != nil {
			return err
		}
	}
	if c.Fault != 0 {
		if err := r.setFaultAt(c.Fault, c.FaultPoint, true); err != nil {
			return err
		}
	}
	targets := make([]string, 0, len(c.Wires))
	for t := range c.Wires {
		targets = append(targets, t)
	}
	slices.Sort(targets)
	for _, t := range targets {
		in, point, err := contract.ParseSimTarget(t)
		if err != nil {
			return err
		}
		if err := r.SetWire(in, point, c.Wires[t]); err != nil {
			return err
		}
	}
	if c.Stick != 0 {
		if err := r.StickFeedback(c.Stick, true); err != nil {
			return err
		}
	}
	if b := c.Bounce; b != nil {
		return r.Bounce(b.Input, b.To, b.Count, b.Every)
	}
	return nil
}
