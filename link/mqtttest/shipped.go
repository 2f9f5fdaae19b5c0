package mqtttest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/roomd/roomd/access"
)

// ShippedDir returns the absolute path of configs/mosquitto, the production
// broker files, found by walking up from the working directory to the
// module root (the first directory upwards holding go.mod).
func ShippedDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find configs/mosquitto: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "configs", "mosquitto")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("find configs/mosquitto: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find configs/mosquitto: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Shipped returns the absolute path of the production file name in
// configs/mosquitto ("acl", "central.acl", ...). It fails the test if the
// file is missing.
func Shipped(t testing.TB, name string) string {
	t.Helper()
	p, err := shippedFile(name)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return p
}

// shippedFile is Shipped for a caller without a test.
func shippedFile(name string) (string, error) {
	dir, err := ShippedDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("shipped file: %w", err)
	}
	return p, nil
}

// Keywords counts the lines of a config that set each keyword (comments
// and blank lines aside). It reads mosquitto's "keyword value" lines and
// stunnel's "keyword = value" ones; '#' and ';' start comments.
func Keywords(text string) map[string]int {
	n := map[string]int{}
	for _, ln := range strings.Split(text, "\n") {
		if key := keyword(ln); key != "" {
			n[key]++
		}
	}
	return n
}

func keyword(line string) string {
	ln := strings.TrimSpace(line)
	if ln == "" || strings.HasPrefix(ln, "#") || strings.HasPrefix(ln, ";") {
		return ""
	}
	key, _, _ := strings.Cut(ln, " ")
	key, _, _ = strings.Cut(key, "=")
	return key
}

// separator returns what stands between a line's keyword and its value:
// " = " for stunnel's form, " " for mosquitto's.
func separator(line string) string {
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), keyword(line)))
	if strings.HasPrefix(rest, "=") {
		return " = "
	}
	return " "
}

// Rewrite replaces the value of keywords in a config, so that a
// shipped file runs in a test or a benchmark with its own ports, paths and
// certificates and nothing else changed. For each keyword in set, every line
// setting it is rewritten: with one value, every such line gets it; with
// several, the lines get them in order and their numbers must match (the
// listeners of a config with two). An empty value removes the line. A
// keyword of set that the text never sets is an error: the shipped file has
// changed under the caller.
func Rewrite(text string, set map[string][]string) (string, error) {
	have := Keywords(text)
	var errs []error
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := set[k]
		switch {
		case len(vals) == 0:
			errs = append(errs, fmt.Errorf("rewrite %s: no value given", k))
		case have[k] == 0:
			errs = append(errs, fmt.Errorf("rewrite %s: the config never sets it", k))
		case len(vals) > 1 && len(vals) != have[k]:
			errs = append(errs, fmt.Errorf("rewrite %s: the config sets it %d times, %d values given", k, have[k], len(vals)))
		}
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	seen := map[string]int{}
	var b strings.Builder
	lines := strings.Split(text, "\n")
	for i, ln := range lines {
		key := keyword(ln)
		vals, ok := set[key]
		switch {
		case !ok:
			b.WriteString(ln)
		default:
			v := vals[0]
			if len(vals) > 1 {
				v = vals[seen[key]]
			}
			seen[key]++
			if v == "" {
				continue
			}
			b.WriteString(key + separator(ln) + v)
		}
		if i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

// SiteACL writes mosquitto's ACL for the shipped site file
// (configs/mosquitto/site.yaml) as edit changes it (the rooms, operators
// and bench identities of a test), exactly as visitctl acl writes it, and
// returns its path. It fails the test if the edited site file is invalid.
func SiteACL(t testing.TB, edit func(*access.Site)) string {
	t.Helper()
	path, err := WriteSiteACL(t.TempDir(), edit)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	return path
}

// WriteSiteACL is SiteACL for callers without a test (a benchmark's
// world): it writes the ACL into dir and returns its path.
func WriteSiteACL(dir string, edit func(*access.Site)) (string, error) {
	file, err := shippedFile("site.yaml")
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the shipped site file: %w", err)
	}
	site, err := access.ReadSite(data, "site.yaml")
	if err != nil {
		return "", fmt.Errorf("shipped %w", err)
	}
	if edit != nil {
		edit(site)
	}
	if err := site.Check(); err != nil {
		return "", fmt.Errorf("site file as edited: %w", err)
	}
	path := filepath.Join(dir, "acl")
	if err := os.WriteFile(path, []byte(site.ACL("site.yaml")), 0o600); err != nil {
		return "", fmt.Errorf("write ACL: %w", err)
	}
	return path, nil
}
