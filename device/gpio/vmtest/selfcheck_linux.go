package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/roomd/roomd/wallclock"
	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// selfCheck proves the harness itself before any roomd code runs: the sim
// chip is visible to periph by its label, a pull write arrives as an edge,
// and an output periph drives shows in the sim's value attribute. It uses
// lines SELFIN and SELFOUT, which the room layout does not use, and
// releases them.
func selfCheck(sim *simChip) error {
	if _, err := driverreg.Init(); err != nil {
		return fmt.Errorf("periph driver init: %w", err)
	}
	var chip *gpioioctl.GPIOChip
	for _, c := range gpioioctl.Chips {
		if c.Label() == sim.label {
			chip = c
		}
	}
	if chip == nil {
		return fmt.Errorf("no GPIO chip labelled %q among %d chips", sim.label, len(gpioioctl.Chips))
	}
	in := chip.ByNumber(offSelfIn)
	out := chip.ByNumber(offSelfOut)
	if in == nil || out == nil {
		return errors.New("chip has no self-check lines")
	}
	defer in.Close()
	defer out.Close()

	// No bias: a bias request would overwrite the sim's pull.
	if err := in.In(gpio.PullNoChange, gpio.BothEdges); err != nil {
		return fmt.Errorf("request %s as input: %w", in, err)
	}
	for _, high := range []bool{true, false} {
		t0 := wallclock.Now()
		if err := sim.pull(offSelfIn, high); err != nil {
			return err
		}
		if !in.WaitForEdge(2 * time.Second) {
			return fmt.Errorf("no edge on %s within 2s of pull high=%v", in, high)
		}
		lat := wallclock.Since(t0)
		if got := in.Read() == gpio.High; got != high {
			return fmt.Errorf("%s reads high=%v after pull high=%v", in, got, high)
		}
		fmt.Printf("vmtest: self-check edge latency (pull write to WaitForEdge) %s\n", lat.Round(time.Microsecond))
	}
	for _, l := range []gpio.Level{gpio.High, gpio.Low} {
		if err := out.Out(l); err != nil {
			return fmt.Errorf("drive %s %s: %w", out, l, err)
		}
		v, err := sim.value(offSelfOut)
		if err != nil {
			return err
		}
		if want := map[gpio.Level]int{gpio.High: 1, gpio.Low: 0}[l]; v != want {
			return fmt.Errorf("sim value of %s is %d after Out(%s)", out, v, l)
		}
	}
	fmt.Println("vmtest: self-check passed")
	return nil
}
