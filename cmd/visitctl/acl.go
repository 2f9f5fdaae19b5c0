package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/roomd/roomd/access"
)

// maxSiteFile bounds the site file and an installed ACL visitctl reads.
const maxSiteFile = 1 << 20

// runACL is "visitctl acl SITE_FILE": mosquitto's ACL for the site's
// identities, from the roles' table (package access), on stdout; with
// --check ACL_FILE, whether an installed ACL is still that, naming the
// first line that differs (exit 1 if it is not).
func runACL(g globals, args []string, stdout io.Writer) error {
	fs := newFlags("acl", &g)
	check := fs.String("check", "", "compare the installed ACL `file` with what the site file gives")
	pos, help, err := parseArgs("acl", fs, args, stdout)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("acl takes one SITE_FILE (e.g. /etc/mosquitto/site.yaml), got %d arguments", len(pos))
	}
	data, err := readSmall(pos[0])
	if err != nil {
		return err
	}
	site, err := access.ReadSite(data, pos[0])
	if err != nil {
		return err
	}
	acl := site.ACL(filepath.Base(pos[0]))
	if *check == "" {
		_, err = io.WriteString(stdout, acl)
		return err
	}
	installed, err := readSmall(*check)
	if err != nil {
		return err
	}
	if string(installed) == acl {
		_, err = fmt.Fprintf(stdout, "%s is what %s gives\n", *check, pos[0])
		return err
	}
	want, have := strings.Split(acl, "\n"), strings.Split(string(installed), "\n")
	for i := 0; i < max(len(want), len(have)); i++ {
		w, h := at(want, i), at(have, i)
		if w != h {
			return fmt.Errorf("%s is not what %s gives: line %d is %q, want %q; write it again with visitctl acl %s > %s and reload mosquitto",
				*check, pos[0], i+1, h, w, pos[0], *check)
		}
	}
	return nil
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end of file)"
}

// readSmall reads a regular file of at most maxSiteFile bytes.
func readSmall(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxSiteFile {
		return nil, fmt.Errorf("read %s: not a regular file of at most %d bytes", path, maxSiteFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
