package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon/statefile"
	"github.com/roomd/roomd/daemon/timebase"
)

// StateFileName is the name of the state file inside the state directory.
const StateFileName = "state.json"

// StateVersion is the version of the persisted layout.
const StateVersion = 1

// PersistedState is the content of the state file. It is internal to roomd
// (not a public contract) and exported for tools and tests that inspect it.
type PersistedState struct {
	Version int    `json:"version"`
	Room    string `json:"room"`
	// Clock is the time axis checkpoint: anchor and latest axis time.
	Clock      timebase.Checkpoint `json:"clock"`
	Controller controller.Snapshot `json:"controller"`
	// Unsent are records not yet accepted by the outbox, oldest first,
	// including those of the latest step (which may also be in the outbox).
	Unsent []controller.Record `json:"unsent,omitempty"`
}

// StatePath returns the state file's path in dir.
func StatePath(dir string) string { return filepath.Join(dir, StateFileName) }

// LoadState reads the state file at path. It returns an error wrapping
// statefile.ErrNotExist when there is none, and statefile.ErrCorrupt when
// the envelope, checksum, JSON or version is wrong.
func LoadState(path string) (*PersistedState, error) {
	data, err := statefile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	var st PersistedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("load state: %w", &statefile.CorruptError{Path: path, Reason: "bad JSON: " + err.Error()})
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("load state: %w", &statefile.CorruptError{Path: path, Reason: fmt.Sprintf("version %d, want %d", st.Version, StateVersion)})
	}
	return &st, nil
}

// SaveState writes st to path atomically.
func SaveState(path string, st *PersistedState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save state %s: encode: %w", path, err)
	}
	if err := statefile.Write(path, data); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// setAside renames an unusable state file to path.corrupt-<time> so that it
// can be examined, and returns the new name.
func setAside(path string, at time.Time) (string, error) {
	to := fmt.Sprintf("%s.corrupt-%s", path, at.UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, to); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("set aside state file %s: %w", path, err)
	}
	return to, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// checkDir reports a state directory that is missing or not a directory.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s is not a directory", dir)
	}
	return nil
}
