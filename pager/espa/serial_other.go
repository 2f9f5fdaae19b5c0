//go:build !linux

package espa

import (
	"errors"
	"os"
)

// OpenSerial is only implemented on Linux.
func OpenSerial(path string, s Serial) (*os.File, error) {
	return nil, errors.New("open serial: only on Linux")
}
