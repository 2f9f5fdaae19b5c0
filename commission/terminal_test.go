package commission_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/commission"
	"github.com/roomd/roomd/controller"
)

// screen is what a Terminal wrote, safe to read while it writes.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestTerminalOnTheSimulator: the tester types simulator lines to act and
// y or n to answer, on the terminal; the walk-through takes both.
func TestTerminalOnTheSimulator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRoom(t, roomSpec())
		in, typist := io.Pipe()
		out := &screen{}
		term := commission.NewTerminal(in, out, r)
		type result struct {
			lines []commission.LineReport
			err   error
		}
		done := make(chan result, 1)
		go func() {
			lines, err := commission.Walk(context.Background(), r, term, commission.WalkOptions{Mode: controller.TestLight, Wait: time.Minute})
			done <- result{lines, err}
		}()
		typeLine := func(line string) {
			_, err := io.WriteString(typist, line+"\n")
			require.NoError(t, err)
			synctest.Wait()
		}
		synctest.Wait()
		assert.Contains(t, out.String(), "> panic point 'bed': press the panic point 'bed' now\n")
		typeLine("window=open")
		assert.Contains(t, out.String(), `simulator: sim: unknown key "window"`)
		typeLine("y")
		assert.Contains(t, out.String(), "(nothing is asked now)")
		typeLine("panic:bed=pressed")
		time.Sleep(2 * time.Second) // past the settle time
		synctest.Wait()
		assert.Contains(t, out.String(), "> panic point 'bed': release the panic point 'bed' (reset it if it latches)\n")
		typeLine("panic:bed=released")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		typeLine(`{"points":{"toilet":"pressed"}}`)
		time.Sleep(2 * time.Second)
		typeLine("panic:toilet=false")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Contains(t, out.String(), "(simulator: alarm_sounder now shows panic)\n? alarm_sounder (simulated): does the sounder at the door sound the panic pattern? Answer y or n.\n")
		typeLine("n")
		res := <-done
		require.NoError(t, res.err)
		require.Len(t, res.lines, 3)
		assert.True(t, res.lines[0].Passed, res.lines[0].Seen)
		assert.True(t, res.lines[1].Passed, res.lines[1].Seen)
		assert.Equal(t, controller.FaultNotConfirmed, res.lines[2].Fault, "n is no")
		assert.Contains(t, out.String(), "  panic point 'toilet': passed\n")
		assert.Contains(t, out.String(), "  alarm_sounder: FAILED (not_confirmed)")
		require.NoError(t, typist.Close())
	})
}

// TestTerminalInputEnds: when the installer's input ends, a question gets
// no answer and the walk-through stops: nothing passes by default.
func TestTerminalInputEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &screen{}
		term := commission.NewTerminal(strings.NewReader("y\n"), out, nil)
		synctest.Wait()
		_, err := term.Confirm(context.Background(), commission.Step{Kind: commission.StepConfirm, Output: controller.OutputInUse, Text: "lit?"})
		require.ErrorContains(t, err, "no answer: the input ended: EOF")
		assert.Contains(t, out.String(), "(nothing is asked now)", "an early y answers nothing")

		// Without a simulator a sim line is not understood.
		in, typist := io.Pipe()
		term = commission.NewTerminal(in, out, nil)
		_, err = io.WriteString(typist, "door=open\n")
		require.NoError(t, err)
		synctest.Wait()
		assert.Contains(t, out.String(), `not understood: "door=open" (answer y or n when asked)`)
		require.NoError(t, typist.Close())
	})
}
