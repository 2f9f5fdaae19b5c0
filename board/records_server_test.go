package board

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/wallclock"
)

// The records and the operator's language are the logged-in guard's: the
// CSV needs a session, the language a session and its CSRF token; the page
// says its language from the first byte.
func TestRecordsExportAndLanguageNeedASession(t *testing.T) {
	ts, _ := webOnly(t, false)
	anon := client(t, ts)
	for _, p := range []string{"/api/records", "/api/records.csv"} {
		resp, err := anon.Get(ts.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, p)
	}

	c := client(t, ts)
	postLogin(t, c, ts, "guard-7", "pw-guard-7-long").Body.Close()
	tok := csrfOf(t, c, ts)
	post := func(path, body, token string) int {
		req, err := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, post("/api/prefs", `{"lang":"de"}`, ""))
	assert.Equal(t, http.StatusBadRequest, post("/api/prefs", `{"lang":"xx"}`, tok))
	assert.Equal(t, http.StatusOK, post("/api/prefs", `{"lang":"de"}`, tok))
	resp, err := c.Get(ts.URL + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(page), `<html lang="de">`, "the operator's choice")
	assert.Equal(t, http.StatusNotFound, post("/api/rooms/room-1/link", `{"cut":true}`, tok), "no cable on this board")
	assert.Equal(t, http.StatusNotFound, post("/api/rooms/room-1/action/ack_contact", `{}`, tok), "a room the board does not know")

	resp, err = c.Get(ts.URL + "/api/records.csv?days=0")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = c.Get(ts.URL + "/api/records.csv?days=7")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	rows, err := csv.NewReader(resp.Body).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, [][]string{RecordsCSVHeader}, rows, "no alert yet: the header alone")
}

// A no-contact alarm goes to the records: raised, acknowledged by name,
// cleared when the room is back.
func TestNoContactAlarmInTheRecords(t *testing.T) {
	r, err := OpenRecords(RecordsOptions{})
	require.NoError(t, err)
	now := wallclock.Now()
	c := &ContactView{RaisedAt: contract.T(now)}
	id := contactAlertID(c)
	require.NoError(t, r.Add(RecordEvent{At: contract.T(now), Room: "room-3", Alert: id, Kind: "no_contact", Severity: "critical", Type: "raised"}))
	require.NoError(t, r.Add(RecordEvent{At: contract.T(now.Add(20 * time.Second)), Room: "room-3", Alert: id, Kind: "no_contact", Severity: "critical", Type: "acked", By: "guard-7"}))
	require.NoError(t, r.Add(RecordEvent{At: contract.T(now.Add(time.Minute)), Room: "room-3", Alert: id, Kind: "no_contact", Severity: "critical", Type: "cleared"}))
	got := r.Between(now.Add(-time.Minute), now.Add(time.Hour))
	require.Len(t, got, 1)
	assert.Equal(t, 20.0, got[0].AckS)
	assert.Equal(t, "guard-7", got[0].AckedBy)
	assert.False(t, got[0].Nuisance, "someone acted")
}
