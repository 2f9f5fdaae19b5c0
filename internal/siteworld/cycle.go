package siteworld

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/wallclock"
)

// Sample is one panic press, seen by the site's guard.
type Sample struct {
	Phase   string
	Pressed time.Time
	Raised  Seen // the alert_raised as the site's guard saw it first
}

// Cycle presses the panic button of a room of the site, waits for
// alert_raised at the site's guard, releases the button, acknowledges the
// alert as the guard station and waits for it to clear; timeout bounds each
// wait. The sample is returned as soon as the guard has seen the alert,
// even when a later step fails.
func (s *Site) Cycle(ctx context.Context, room, phase string, timeout time.Duration) (Sample, error) {
	r := s.Room(room)
	switch {
	case r == nil:
		return Sample{}, fmt.Errorf("site %s: no room %s running", s.ID, room)
	case s.Guard == nil:
		return Sample{}, fmt.Errorf("site %s: no guard console (a site of a World has one)", s.ID)
	}
	pressed := wallclock.Now()
	if err := r.Sim().SetInput(controller.InputPanic, controller.LevelActive); err != nil {
		return Sample{}, fmt.Errorf("%s/%s: press panic: %w", s.ID, room, err)
	}
	a, err := s.Guard.Next(ctx, room, "alert_raised", "panic", timeout)
	if err != nil {
		_ = r.Sim().SetInput(controller.InputPanic, controller.LevelInactive)
		return Sample{}, err
	}
	smp := Sample{Phase: phase, Pressed: pressed, Raised: a}
	if err := r.Sim().SetInput(controller.InputPanic, controller.LevelInactive); err != nil {
		return smp, fmt.Errorf("%s/%s: release panic: %w", s.ID, room, err)
	}
	if _, err := s.Guard.Ack(ctx, a, timeout); err != nil {
		return smp, err
	}
	return smp, nil
}

// Cycles runs n cycles in every running room of the given sites at once
// (each room's own cycles one after the other) and returns the samples of
// the cycles that completed, and the errors of the others (a room stops at
// its first).
func (w *World) Cycles(ctx context.Context, n int, phase string, timeout time.Duration, sites ...*Site) ([]Sample, error) {
	var mu sync.Mutex
	var out []Sample
	var errs []error
	var wg sync.WaitGroup
	for _, s := range sites {
		for _, room := range s.RoomIDs() {
			wg.Go(func() {
				for range n {
					smp, err := s.Cycle(ctx, room, phase, timeout)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else {
						out = append(out, smp)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Latencies returns, of each sample, press → alert_raised at the site's
// guard, and press → the record's first arrival on alerts at the centre
// (of the samples that arrived there).
func Latencies(samples []Sample, booking *Consumer) (guard, centre []time.Duration) {
	for _, s := range samples {
		guard = append(guard, s.Raised.Arrived.Sub(s.Pressed))
		if at, ok := booking.AlertArrived(s.Raised.Key); ok {
			centre = append(centre, at.Sub(s.Pressed))
		}
	}
	return guard, centre
}
