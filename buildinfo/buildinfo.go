// Package buildinfo tells which version of roomd a binary is. The package
// build sets it at link time:
//
//	go build -ldflags "-X github.com/roomd/roomd/buildinfo.version=1.4.0" ./cmd/roomd
//
// Without that (go build, go run, go install) it is derived from the Go
// build information: the module version Go stamps from the git tag or
// commit, written the way Debian orders versions.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// version is set with -ldflags -X by .ci/package.sh; empty otherwise.
var version string

// Unknown is the version of a binary built without -X and without module or
// version-control information (e.g. go build -buildvcs=false).
const Unknown = "0.0.0~unknown"

// Version returns the version of this binary: the one the package was built
// as (the same as the Debian package's version), or one derived from the Go
// build information, or Unknown. It is never empty.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Unknown
	}
	return FromModuleVersion(bi.Main.Version)
}

// FromModuleVersion turns a Go module version (a semantic version: a tag
// such as v1.4.0, a pseudo-version such as
// v0.0.0-20260301120000-abcdef123456, either perhaps with +dirty) into a
// Debian version that sorts the same way: the leading v is dropped and every
// '-' becomes '~', since a semantic-version pre-release (and so a
// pseudo-version) sorts before its release exactly as Debian's '~' does.
// "(devel)" or anything else that is not a module version gives Unknown.
func FromModuleVersion(v string) string {
	s, ok := strings.CutPrefix(v, "v")
	if !ok || s == "" || s[0] < '0' || s[0] > '9' {
		return Unknown
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '+', r == '-':
		default:
			return Unknown
		}
	}
	return strings.ReplaceAll(s, "-", "~")
}
