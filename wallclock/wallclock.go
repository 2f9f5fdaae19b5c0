// Package wallclock is where roomd reads the wall clock: every binary and
// every test reads today's date through Now, never through time.Now (a test
// in package arch holds the line).
//
// That one seam lets the test suite run as if it were another day. Built
// with the tag timeshift, Now adds the duration in the environment variable
// ROOMD_TIME_SHIFT (a Go duration: 8784h is 366 days later, -8784h as much
// earlier) to the machine's clock. A test that compares a date it holds
// with today, or an expiry computed once with the real clock, then fails:
// .ci/run runs the fast tier a year later and a year earlier. Without the
// tag (every shipped binary) the variable is not even read.
//
// The shift keeps the monotonic reading, so durations measured between two
// Now calls are the machine's.
package wallclock

import "time"

// Now returns the wall clock's time, shifted by Shift.
func Now() time.Time { return time.Now().Add(shift) }

// Since returns the time elapsed since t, a time read from Now: use it
// instead of time.Since, which would mix a shifted time with the machine's
// where there is no monotonic reading (testing/synctest's clock has none).
func Since(t time.Time) time.Duration { return Now().Sub(t) }

// Until returns the duration until t, a time read from Now (see Since).
func Until(t time.Time) time.Duration { return t.Sub(Now()) }

// Deadline returns the instant d from now on the machine's own clock, never
// shifted: the deadline of an I/O operation (net.Conn.SetDeadline, an
// os.File's), which the runtime measures against the machine's clock. It
// is not a date: never compare it with Now.
func Deadline(d time.Duration) time.Time { return time.Now().Add(d) }

// Shift returns how far Now is from the machine's clock: zero in every
// build but the tests' timeshift one.
func Shift() time.Duration { return shift }

// Tags returns the build tags a test must pass to go build so that the
// binaries it runs read the same clock as it does: "timeshift" in a
// timeshift build, "" otherwise.
func Tags() string { return tags }
