package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/eol"
)

// BaselineFile is the name of the file, in the room's state directory,
// where commissioning keeps each supervised loop's baseline. Its ohms
// never leave the room.
const BaselineFile = "loop-baselines.json"

// Baselines are the commissioned baselines of a room's supervised loops,
// by LineName.
type Baselines struct {
	// At is when the commissioning that measured them ended; By who ran it.
	At    time.Time               `json:"at"`
	By    string                  `json:"by"`
	Loops map[string]eol.Baseline `json:"loops"`
}

// LineName names line idx of input in the way a function test's lines are
// named: "door", "panic:bed", "presence:2".
func (s Spec) LineName(in controller.Input, idx int) string {
	l := controller.LineResult{Input: in}
	switch in {
	case controller.InputPanic:
		l.Point = s.PanicPoint(idx)
	case controller.InputPresence:
		l.Sensor = idx + 1
	}
	return l.Name()
}

// LoadBaselines reads the baselines in dir; none (and no error) if the
// file does not exist yet.
func LoadBaselines(dir string) (Baselines, error) {
	data, err := os.ReadFile(filepath.Join(dir, BaselineFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Baselines{}, nil
	}
	if err != nil {
		return Baselines{}, fmt.Errorf("read loop baselines: %w", err)
	}
	var b Baselines
	if err := json.Unmarshal(data, &b); err != nil {
		return Baselines{}, fmt.Errorf("read loop baselines %s: %w", filepath.Join(dir, BaselineFile), err)
	}
	return b, nil
}

// SaveBaselines writes b in dir, atomically (a temporary file renamed).
func SaveBaselines(dir string, b Baselines) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("write loop baselines: %w", err)
	}
	tmp, err := os.CreateTemp(dir, BaselineFile+".*")
	if err != nil {
		return fmt.Errorf("write loop baselines: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write loop baselines: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write loop baselines: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write loop baselines: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, BaselineFile)); err != nil {
		return fmt.Errorf("write loop baselines: %w", err)
	}
	return nil
}

// WithBaselines returns s with each supervised loop's baseline from b
// (loops b does not name keep theirs).
func (s Spec) WithBaselines(b Baselines) Spec {
	if len(b.Loops) == 0 {
		return s
	}
	inputs := make(map[controller.Input][]LineSpec, len(s.Inputs))
	for in, lines := range s.Inputs {
		out := make([]LineSpec, len(lines))
		for i, l := range lines {
			if l.Loop != nil {
				if base, ok := b.Loops[s.LineName(in, i)]; ok {
					loop := *l.Loop
					loop.Baseline = base
					l.Loop = &loop
				}
			}
			out[i] = l
		}
		inputs[in] = out
	}
	s.Inputs = inputs
	return s
}
