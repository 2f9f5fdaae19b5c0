//go:build unix

package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// checkOwner refuses to work as root on a state directory that belongs
// to another user (roomd, as the package installs it): what the journal
// writes there would be root's, and roomd, running as its own user, could
// not write its journal any more.
func checkOwner(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // made by whoever runs first; opening the journal says more
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	name := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return fmt.Errorf("the state directory %s belongs to user %s: run the test as that user, so that what it writes stays %s's: sudo -u %s roomd commission ...",
		dir, name, name, name)
}
