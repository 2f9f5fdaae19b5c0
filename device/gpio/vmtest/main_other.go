//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "vmtest runs only as /init of a Linux test VM")
	os.Exit(2)
}
