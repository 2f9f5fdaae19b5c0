//go:build !unix

package main

// checkOwner has nothing to check where there are no file owners.
func checkOwner(string) error { return nil }
