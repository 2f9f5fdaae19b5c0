//go:build unix

package journal

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive flock on the directory. flock locks belong to
// the open file description, so a second lock in the same process conflicts
// too.
func lockDir(dir string) (io.Closer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock journal %s: %w", dir, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock journal %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock journal %s: %w", dir, err)
	}
	return f, nil
}
