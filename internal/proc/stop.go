// Package proc stops a child process the way a service manager would.
package proc

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Stop sends sig to p and waits until done is closed (the caller's Wait
// returned). It sends sig again every second, because a daemon that sets
// its run flag after installing its handler (mosquitto 2.0 does) forgets a
// signal that lands in between; after within it kills p and returns an
// error saying so.
func Stop(p *os.Process, done <-chan struct{}, sig os.Signal, within time.Duration) error {
	select {
	case <-done:
		return nil
	default:
	}
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal process %d with %v: %w", p.Pid, sig, err)
	}
	again := time.NewTicker(time.Second)
	defer again.Stop()
	give := time.NewTimer(within)
	defer give.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-again.C:
			_ = p.Signal(sig)
		case <-give.C:
			_ = p.Kill()
			<-done
			return fmt.Errorf("process %d did not exit within %s of %v (sent every second); killed", p.Pid, within, sig)
		}
	}
}
