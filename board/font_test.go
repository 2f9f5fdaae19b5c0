package board

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/font/sfnt"
)

// The page embeds its font (a subset of DejaVu Sans, regular and bold):
// every character that the page, its style or a catalogue uses must be in
// both, or a guard sees an empty box where a symbol should be.
func TestTheEmbeddedFontHasEveryCharacterThePageUses(t *testing.T) {
	var fonts []*sfnt.Font
	for _, name := range []string{"board-sans.ttf", "board-sans-bold.ttf"} {
		data, err := os.ReadFile(filepath.Join("web", "static", "fonts", name))
		require.NoError(t, err)
		f, err := sfnt.Parse(data)
		require.NoError(t, err, name)
		fonts = append(fonts, f)
	}
	files := []string{"web/index.html", "web/login.html", "web/static/board.js", "web/static/board.css"}
	locales, err := filepath.Glob("locales/*.json")
	require.NoError(t, err)
	require.Len(t, locales, len(Languages))
	files = append(files, locales...)
	seen := map[rune]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, r := range string(data) {
			if r > 0x7e && !unicode.IsControl(r) {
				seen[r] = f
			}
		}
	}
	require.Contains(t, seen, '◆', "the scan found the page's symbols")
	var buf sfnt.Buffer
	for r, where := range seen {
		for i, f := range fonts {
			g, err := f.GlyphIndex(&buf, r)
			require.NoError(t, err)
			assert.NotZero(t, g, "%q (U+%04X, in %s) is missing from font %d: add it to web/static/fonts/make-fonts.sh, or use another symbol", string(r), r, where, i)
		}
	}
	// The letters of the five languages, whatever a catalogue says today.
	for _, r := range "àèéìòùÀÈÉÌÒÙäöüßÄÖÜçœæâêîôûëïÿÇŒÆÂÊÎÔÛËÏñáíóúüÑÁÍÓÚ¿¡«»’€" {
		for i, f := range fonts {
			g, _ := f.GlyphIndex(&buf, r)
			assert.NotZero(t, g, "%q missing from font %d", string(r), i)
		}
	}
	assert.False(t, strings.ContainsRune(string(mustRead(t, "web/static/board.js")), '⧗'), "⧗ is in no Debian default font")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}
