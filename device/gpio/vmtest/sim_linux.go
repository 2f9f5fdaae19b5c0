package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// simChip is one live gpio-sim bank, created through configfs and driven
// through its sysfs attributes.
type simChip struct {
	cfgDir string // /sys/kernel/config/gpio-sim/<name>
	sysDir string // /sys/devices/platform/<dev_name>/<chip_name>
	label  string
}

const gpioSimConfig = "/sys/kernel/config/gpio-sim"

// newSimChip creates a gpio-sim device called name with one bank of n lines
// labelled label, names the lines in names (offset -> name), and makes it
// live. Every line starts pulled down (level 0).
func newSimChip(name, label string, n int, names map[int]string) (*simChip, error) {
	cfg := filepath.Join(gpioSimConfig, name)
	bank := filepath.Join(cfg, "bank0")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		return nil, fmt.Errorf("create gpio-sim device %s: %w", cfg, err)
	}
	if err := os.Mkdir(bank, 0o755); err != nil {
		return nil, fmt.Errorf("create gpio-sim bank %s: %w", bank, err)
	}
	if err := writeAttr(filepath.Join(bank, "num_lines"), strconv.Itoa(n)); err != nil {
		return nil, err
	}
	if err := writeAttr(filepath.Join(bank, "label"), label); err != nil {
		return nil, err
	}
	offsets := make([]int, 0, len(names))
	for off := range names {
		offsets = append(offsets, off)
	}
	sort.Ints(offsets)
	for _, off := range offsets {
		if off < 0 || off >= n {
			return nil, fmt.Errorf("gpio-sim line %d (%s): offset outside 0..%d", off, names[off], n-1)
		}
		line := filepath.Join(bank, "line"+strconv.Itoa(off))
		if err := os.Mkdir(line, 0o755); err != nil {
			return nil, fmt.Errorf("create gpio-sim line %s: %w", line, err)
		}
		if err := writeAttr(filepath.Join(line, "name"), names[off]); err != nil {
			return nil, err
		}
	}
	if err := writeAttr(filepath.Join(cfg, "live"), "1"); err != nil {
		return nil, err
	}
	devName, err := readAttr(filepath.Join(cfg, "dev_name"))
	if err != nil {
		return nil, err
	}
	chipName, err := readAttr(filepath.Join(bank, "chip_name"))
	if err != nil {
		return nil, err
	}
	c := &simChip{
		cfgDir: cfg,
		sysDir: filepath.Join("/sys/devices/platform", devName, chipName),
		label:  label,
	}
	if _, err := os.Stat(c.sysDir); err != nil {
		return nil, fmt.Errorf("gpio-sim %s is live but its sysfs directory is missing: %w", name, err)
	}
	return c, nil
}

// pull sets the simulated pull of line off: what an input reads when nothing
// drives it. This is how the test plays the outside world.
func (c *simChip) pull(off int, high bool) error {
	v := "pull-down"
	if high {
		v = "pull-up"
	}
	return writeAttr(c.attr(off, "pull"), v)
}

// value reads the line's current level as the chip sees it (for an output,
// the level user space drives).
func (c *simChip) value(off int) (int, error) {
	s, err := readAttr(c.attr(off, "value"))
	if err != nil {
		return 0, err
	}
	switch s {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	}
	return 0, fmt.Errorf("read %s: unexpected value %q", c.attr(off, "value"), s)
}

func (c *simChip) attr(off int, name string) string {
	return filepath.Join(c.sysDir, "sim_gpio"+strconv.Itoa(off), name)
}

func writeAttr(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", v, path, err)
	}
	return nil
}

func readAttr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("read %s: %w", path, errors.New("empty attribute"))
	}
	return s, nil
}
