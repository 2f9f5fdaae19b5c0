//go:build !timeshift

package wallclock

const (
	shift = 0
	tags  = ""
)
