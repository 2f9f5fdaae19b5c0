package board

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// The board's words live in one catalogue per language, locales/<lang>.json,
// read with go-i18n: the login page is rendered with them, and the page
// asks for its language's messages (/api/i18n). English is the source; a
// test fails on any key missing from, or unknown to, another language.
//
//go:embed locales/*.json
var localesFS embed.FS

// Languages are the languages the board speaks, English (the source) first.
var Languages = []string{"en", "it", "de", "fr", "es"}

// Catalog is the board's words in every language.
type Catalog struct {
	bundle   *i18n.Bundle
	messages map[string]map[string]string // lang → id → template
	matcher  language.Matcher
	tags     []language.Tag
}

// LoadCatalog reads the embedded catalogues.
func LoadCatalog() (*Catalog, error) {
	c := &Catalog{bundle: i18n.NewBundle(language.English), messages: map[string]map[string]string{}}
	c.bundle.RegisterUnmarshalFunc("json", json.Unmarshal)
	for _, l := range Languages {
		data, err := localesFS.ReadFile("locales/" + l + ".json")
		if err != nil {
			return nil, fmt.Errorf("the board's words in %s: %w", l, err)
		}
		f, err := c.bundle.ParseMessageFileBytes(data, l+".json")
		if err != nil {
			return nil, fmt.Errorf("the board's words in %s: %w", l, err)
		}
		m := map[string]string{}
		for _, msg := range f.Messages {
			m[msg.ID] = msg.Other
		}
		c.messages[l] = m
		c.tags = append(c.tags, language.Make(l))
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

var (
	catalogOnce sync.Once
	catalog     *Catalog
	catalogErr  error
)

// DefaultCatalog returns the embedded catalogues, read once.
func DefaultCatalog() (*Catalog, error) {
	catalogOnce.Do(func() { catalog, catalogErr = LoadCatalog() })
	return catalog, catalogErr
}

// Supported reports whether the board speaks lang.
func Supported(lang string) bool { return slices.Contains(Languages, lang) }

// Match returns the board's language for a browser's Accept-Language
// header (English when it asks for none the board speaks).
func (c *Catalog) Match(acceptLanguage string) string {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	return Languages[i]
}

// Messages returns every message of lang, as templates ({{.Name}}).
func (c *Catalog) Messages(lang string) map[string]string {
	if m, ok := c.messages[lang]; ok {
		return maps.Clone(m)
	}
	return maps.Clone(c.messages["en"])
}

// T returns message id in lang, filled with data (go-i18n's localizer: a
// message missing in lang falls back to English).
func (c *Catalog) T(lang, id string, data map[string]any) string {
	s, err := i18n.NewLocalizer(c.bundle, lang, "en").Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id
	}
	return s
}

// Prefs keeps each operator's language, in prefs.json in the board's state
// directory (in memory without one).
type Prefs struct {
	mu   sync.Mutex
	path string
	lang map[string]string
}

type prefsFile struct {
	Lang map[string]string `json:"lang"`
}

// OpenPrefs reads the operators' preferences from dir ("": in memory).
func OpenPrefs(dir string) (*Prefs, error) {
	p := &Prefs{lang: map[string]string{}}
	if dir == "" {
		return p, nil
	}
	p.path = filepath.Join(dir, "prefs.json")
	data, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read the operators' preferences: %w", err)
	}
	var f prefsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return p, fmt.Errorf("read the operators' preferences %s: %w", p.path, err)
	}
	for op, l := range f.Lang {
		if Supported(l) {
			p.lang[op] = l
		}
	}
	return p, nil
}

// Lang returns the language operator chose ("" if none).
func (p *Prefs) Lang(operator string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lang[operator]
}

// SetLang keeps operator's language and writes the file.
func (p *Prefs) SetLang(operator, lang string) error {
	if !Supported(lang) {
		return fmt.Errorf("language %q: the board speaks %v", lang, Languages)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lang[operator] = lang
	if p.path == "" {
		return nil
	}
	data, err := json.Marshal(prefsFile{Lang: p.lang})
	if err != nil {
		return fmt.Errorf("save the operators' preferences: %w", err)
	}
	tmp := p.path + ".new"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("save the operators' preferences: %w", err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("save the operators' preferences: %w", err)
	}
	return nil
}
