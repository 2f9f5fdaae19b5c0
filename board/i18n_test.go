package board

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var placeholder = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Every language has every message of English, the source, and no other,
// each with the same placeholders and only the simple ones the page fills
// ({{.Name}}).
func TestEveryLanguageHasEveryMessage(t *testing.T) {
	c, err := LoadCatalog()
	require.NoError(t, err)
	en := c.Messages("en")
	require.NotEmpty(t, en)
	for _, l := range Languages {
		m := c.Messages(l)
		for id, s := range en {
			tr, ok := m[id]
			if !assert.True(t, ok, "%s: message %q missing", l, id) {
				continue
			}
			assert.NotEmpty(t, strings.TrimSpace(tr), "%s: %s is empty", l, id)
			assert.Equal(t, placeholders(s), placeholders(tr), "%s: %s has other placeholders than English", l, id)
			rest := placeholder.ReplaceAllString(tr, "")
			assert.NotContains(t, rest, "{{", "%s: %s: only {{.Name}} placeholders", l, id)
		}
		for id := range m {
			assert.Contains(t, en, id, "%s: message %q is not in English", l, id)
		}
	}
}

// Every word the page and the login form use is in the catalogue: the
// ids named in board.js (t('id'), t(`prefix.${...}`) with its known
// values), index.html (data-i18n) and login.html.
func TestThePageUsesOnlyMessagesOfTheCatalogue(t *testing.T) {
	c, err := LoadCatalog()
	require.NoError(t, err)
	en := c.Messages("en")
	js, err := os.ReadFile("web/static/board.js")
	require.NoError(t, err)
	html, err := os.ReadFile("web/index.html")
	require.NoError(t, err)
	login, err := os.ReadFile("web/login.html")
	require.NoError(t, err)
	used := map[string]bool{}
	for _, re := range []*regexp.Regexp{regexp.MustCompile(`\bt\('([a-z_.]+)'`), regexp.MustCompile(`label: '([a-z_.]+)'`),
		regexp.MustCompile(`'(records\.col\.[a-z_0-9]+)'`), regexp.MustCompile(`'(records\.(?:day|week|month))'`),
		regexp.MustCompile(`'(tile\.clock_(?:ahead|behind))'`), regexp.MustCompile(`'(cat\.(?:critical|warning)_kind)'`)} {
		for _, m := range re.FindAllStringSubmatch(string(js), -1) {
			used[m[1]] = true
		}
	}
	for _, m := range regexp.MustCompile(`data-i18n="([a-z_.]+)"`).FindAllStringSubmatch(string(html), -1) {
		used[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`index \.T "([a-z_.]+)"`).FindAllStringSubmatch(string(login), -1) {
		used[m[1]] = true
	}
	// The ids the page builds from a value: every value it may build.
	for prefix, values := range map[string][]string{
		"cat.":      append(Categories(), "stale", "no_data", "inspection", "idle_not_ready", "no_contact_new"),
		"count.":    Categories(),
		"kind.":     {"panic", "door_locked", "time_up", "sensor_fault", "not_vacated", "welfare_check", "system_fault", "output_fault", "function_test_due"},
		"sev.":      {"critical", "warning", "info"},
		"phase.":    {"idle", "in_visit", "overtime", "inspection", "out_of_service"},
		"door.":     {"open", "closed", "unknown"},
		"bolt.":     {"locked", "unlocked", "unknown"},
		"link.":     {"online", "offline", "stale", "unknown"},
		"presence.": {"present", "absent", "unknown"},
		"done.":     {"ack_alert", "ack_contact", "extend_visit", "end_visit", "set_ready", "out_of_service", "back_in_service"},
		"lamp.":     {"in_use", "warning", "alarm_light", "alarm_sounder", "reassurance"},
		"pager.":    {"paging_down", "offline"},
		"log.":      {"alert_raised", "alert_escalated", "alert_repeated", "alert_reannounced", "alert_acked", "alert_cleared", "service_changed", "link_offline", "link_stale", "link_online", "link_unknown", "records_lost", "state_lost", "contact_lost", "contact_acked", "contact_back"},
	} {
		assert.Contains(t, string(js), "t(`"+prefix+"${", "board.js builds %s ids", prefix)
		for _, v := range values {
			used[prefix+v] = true
		}
	}
	used["login.wrong"], used["login.too_many"], used["login.unreadable"] = true, true, true
	require.Greater(t, len(used), 150, "the scan found the page's words")
	for id := range used {
		assert.Contains(t, en, id, "the page uses %q, which the catalogue lacks", id)
	}
}

func TestLanguageOfTheBrowserAndOfTheOperator(t *testing.T) {
	c, err := LoadCatalog()
	require.NoError(t, err)
	for accept, want := range map[string]string{"it-IT,it;q=0.9,en;q=0.8": "it", "de-CH": "de", "fr-CA,en": "fr",
		"es-419": "es", "da-DK,da": "en", "": "en", "en-GB": "en", "pt-BR,es;q=0.5": "es"} {
		assert.Equal(t, want, c.Match(accept), accept)
	}
	assert.Equal(t, "Prendi in carico", c.T("it", "action.ack", nil))
	assert.Equal(t, "Troppi accessi falliti. Riprova tra 3 min, oppure chiedi al responsabile di reimpostare la password.",
		c.T("it", "login.too_many", map[string]any{"Minutes": 3}))

	dir := t.TempDir()
	p, err := OpenPrefs(dir)
	require.NoError(t, err)
	require.NoError(t, p.SetLang("guard-7", "de"))
	assert.Error(t, p.SetLang("guard-7", "xx"))
	p, err = OpenPrefs(dir)
	require.NoError(t, err)
	assert.Equal(t, "de", p.Lang("guard-7"), "kept across restarts")
}

// The login page is in the browser's language, and says so (<html lang>).
func TestLoginPageInTheBrowsersLanguage(t *testing.T) {
	s := NewServer(ServerOptions{Board: New(Options{}), Accounts: &Accounts{}, Title: "Terni"})
	for accept, want := range map[string]string{"it-IT,it;q=0.9": "Codice operatore", "de": "Bedienerkennung", "en-US": "Operator id"} {
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		req.Header.Set("Accept-Language", accept)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Contains(t, rec.Body.String(), `<html lang="`+accept[:2]+`">`)
		assert.Contains(t, rec.Body.String(), want)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/i18n?lang=fr", nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var got struct {
		Lang     string            `json:"lang"`
		Messages map[string]string `json:"messages"`
	}
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&got))
	assert.Equal(t, "fr", got.Lang)
	assert.Equal(t, "Acquitter", got.Messages["action.ack"])
}
