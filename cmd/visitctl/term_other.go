//go:build !linux && !darwin

package main

import "io"

// terminalWidth reports no terminal on this platform: watch prints plain
// snapshots.
func terminalWidth(io.Writer) (int, bool) { return 0, false }
