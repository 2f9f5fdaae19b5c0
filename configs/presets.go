package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/roomd/roomd/controller"
)

//go:embed policies/*.yaml
var policyFiles embed.FS

// PresetNames lists the embedded policy presets, sorted (e.g. "canada", "italy").
func PresetNames() []string {
	entries, err := fs.Glob(policyFiles, "policies/*.yaml")
	if err != nil {
		panic(fmt.Sprintf("list embedded presets: %v", err)) // the pattern is constant
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(path.Base(e), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// Preset returns the named policy preset, with Name set to name. The preset
// file is the `policy:` mapping of a config without `preset:`; fields it
// leaves out take roomd's defaults (see Default). An unknown name is an error
// listing the known ones.
func Preset(name string) (controller.Policy, error) {
	if !slices.Contains(PresetNames(), name) {
		return controller.Policy{}, fmt.Errorf("unknown preset %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	file := "policies/" + name + ".yaml"
	data, err := policyFiles.ReadFile(file)
	if err != nil {
		return controller.Policy{}, fmt.Errorf("read preset %s: %w", name, err)
	}
	r := &reader{source: "configs/" + file}
	root, err := r.document(data)
	if err != nil {
		return controller.Policy{}, err
	}
	p := defaultPolicy()
	p.Name = name
	m := r.mapping(root, "", policyKeys...)
	r.policyFields(m, "", &p)
	if len(r.errs) == 0 {
		r.policyValidate(p, m, root, "", "roomd default", nil)
	}
	if err := r.err(); err != nil {
		return controller.Policy{}, fmt.Errorf("preset %s: %w", name, err)
	}
	return p, nil
}
