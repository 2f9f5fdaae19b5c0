package configs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// reader walks a YAML node tree, decoding values into their destinations and
// collecting every problem instead of stopping at the first. A nil node is an
// absent key: every reading method leaves its destination unchanged then.
// A null value (`key:` or `key: ~`) counts as absent too.
type reader struct {
	source string
	errs   []*FieldError
}

func (r *reader) bad(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	r.errs = append(r.errs, &FieldError{Source: r.source, Line: line, Field: field, Constraint: fmt.Sprintf(format, args...)})
}

// err joins the problems found, in the order of their lines in the file.
func (r *reader) err() error {
	slices.SortStableFunc(r.errs, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(r.errs))
	for i, e := range r.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// document decodes data into a node tree and returns the top node, nil for
// an empty document. A YAML syntax error is returned as is.
func (r *reader) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, r.syntax(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		r.bad(&extra, "", "the file holds a second YAML document; a config is one document")
	case !errors.Is(err, io.EOF):
		return nil, r.syntax(err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], nil
	}
	return nil, nil
}

func (r *reader) syntax(err error) error {
	if r.source != "" {
		return fmt.Errorf("parse %s: %w", r.source, err)
	}
	return fmt.Errorf("parse config: %w", err)
}

// resolve follows aliases and turns null into nil.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownKeyHints gives extra advice for keys people are likely to try.
var unknownKeyHints = map[string]string{
	"password": "the password never goes in the config: put it in a file readable only by roomd and name that file with password_file",
	"name":     "a policy's name comes from its preset",
}

// mapping returns the values of mapping n by key, reporting every unknown or
// repeated key. It returns nil if n is absent, null or not a mapping (the
// last is reported).
func (r *reader) mapping(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		r.bad(n, pathOrTop(path), "must be a mapping, got %s", kindName(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if !slices.Contains(known, k.Value) {
			hint := unknownKeyHints[k.Value]
			if hint == "" {
				hint = "known keys here: " + strings.Join(known, ", ")
			}
			r.bad(k, p, "unknown key (%s)", hint)
			continue
		}
		if line, dup := first[k.Value]; dup {
			r.bad(k, p, "given twice (first on line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		out[k.Value] = v
	}
	return out
}

func pathOrTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// scalar returns the text of scalar n; false if n is absent or not a scalar
// (the latter is reported).
func (r *reader) scalar(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		r.bad(n, path, "must be a single value, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// str reads a string. Numbers are taken as their text (room: 101); booleans are refused.
func (r *reader) str(n *yaml.Node, path string, dst *string) bool {
	s, ok := r.scalar(n, path)
	if !ok {
		return false
	}
	if resolve(n).Tag == "!!bool" {
		r.bad(n, path, "must be a string, got the boolean %s (quote it if you mean the text)", s)
		return false
	}
	*dst = s
	return true
}

const durationExamples = "want e.g. 30ms, 5s, 10m, 2h"

func (r *reader) duration(n *yaml.Node, path string, dst *time.Duration) bool {
	s, ok := r.scalar(n, path)
	if !ok {
		return false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		r.bad(n, path, "%q is not a duration (%s)", s, durationExamples)
		return false
	}
	*dst = d
	return true
}

func (r *reader) durations(n *yaml.Node, path string, dst *[]time.Duration) bool {
	n = resolve(n)
	if n == nil {
		return false
	}
	if n.Kind != yaml.SequenceNode {
		r.bad(n, path, "must be a list of durations, e.g. [10m, 2m], got %s", kindName(n))
		return false
	}
	var out []time.Duration
	ok := true
	for i, item := range n.Content {
		var d time.Duration
		if r.duration(item, fmt.Sprintf("%s[%d]", path, i), &d) {
			out = append(out, d)
		} else {
			ok = false
		}
	}
	if ok {
		*dst = out
	}
	return ok
}

func (r *reader) boolean(n *yaml.Node, path string, dst *bool) bool {
	s, ok := r.scalar(n, path)
	if !ok {
		return false
	}
	if resolve(n).Tag != "!!bool" {
		r.bad(n, path, "%q is not a boolean (want true or false)", s)
		return false
	}
	b, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		r.bad(n, path, "%q is not a boolean (want true or false)", s)
		return false
	}
	*dst = b
	return true
}

// integer reads an integer between lo and hi. The value is checked before
// it is stored, so a config reads the same on a 32-bit Pi as on a 64-bit
// one (an int there wraps at 2^32: 4294967313 would become 17). Use at most
// math.MaxInt32 as hi for a value that has no bound of its own.
func (r *reader) integer(n *yaml.Node, path string, dst *int, lo, hi int64) bool {
	s, ok := r.scalar(n, path)
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
	// YAML takes an integer too large for 64 bits as a float or a string:
	// ErrRange says it is an integer all the same.
	if err == nil && resolve(n).Tag != "!!int" || err != nil && !errors.Is(err, strconv.ErrRange) {
		r.bad(n, path, "%q is not an integer", s)
		return false
	}
	tooBig := errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(s, "-") || err == nil && v > hi
	tooSmall := errors.Is(err, strconv.ErrRange) && strings.HasPrefix(s, "-") || err == nil && v < lo
	switch {
	case (tooBig || tooSmall) && hi < math.MaxInt32:
		r.bad(n, path, "must be between %d and %d, got %s", lo, hi, s)
		return false
	case tooSmall:
		r.bad(n, path, "must be at least %d, got %s", lo, s)
		return false
	case tooBig:
		r.bad(n, path, "%s is too large (at most %d)", s, hi)
		return false
	}
	*dst = int(v)
	return true
}

var sizePattern = regexp.MustCompile(`^([0-9][0-9_]*)\s*(B|KiB|MiB|GiB)?$`)

// size reads a byte size: a plain integer or one with a KiB, MiB or GiB suffix.
func (r *reader) size(n *yaml.Node, path string, dst *int64) bool {
	s, ok := r.scalar(n, path)
	if !ok {
		return false
	}
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		r.bad(n, path, "%q is not a byte size (want an integer, or one with KiB, MiB or GiB, e.g. 64MiB)", s)
		return false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(m[1], "_", ""), 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "KiB": KiB, "MiB": MiB, "GiB": GiB}[m[2]]
	if err != nil || v > (1<<62)/mult {
		r.bad(n, path, "%q is too large", s)
		return false
	}
	*dst = v * mult
	return true
}

// enum reads one of names and returns its index; -1 if absent or bad.
func (r *reader) enum(n *yaml.Node, path string, names ...string) int {
	s, ok := r.scalar(n, path)
	if !ok {
		return -1
	}
	if i := slices.Index(names, s); i >= 0 {
		return i
	}
	r.bad(n, path, "%q is not one of %s", s, strings.Join(names, ", "))
	return -1
}

// lineNode returns n, or fallback if n is absent: the node an error points at.
func lineNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}
