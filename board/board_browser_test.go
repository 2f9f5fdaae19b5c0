package board_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

// TestBoardInBrowser drives the board in a real chromium against a real
// mosquitto (the shipped ACL) and real rooms on the simulator backend, as a
// guard on a shift meets it.
func TestBoardInBrowser(t *testing.T) {
	testtier.Slow(t, "drives the board in chromium")
	ctx := browser(t)
	s := startSite(t, siteOptions{Rooms: []string{"room-1", "room-2", "room-4"}, Processes: []string{"room-3"},
		Operators: []string{"guard-7", "guard-8"}})
	send := func(room string, cmd roomclient.Command) *roomclient.Reply {
		t.Helper()
		cctx, cancel := context.WithTimeout(context.Background(), browserWait)
		defer cancel()
		r, err := s.booking.Send(cctx, room, cmd)
		require.NoError(t, err)
		require.NoError(t, r.Err())
		return r
	}

	t.Run("login is required", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(s.web.URL+"/"), chromedp.WaitVisible(chromedp.ID("operator")))
		loc := get(t, ctx, chromedp.Location())
		assert.True(t, strings.HasSuffix(loc, "/login"), "the board sends a stranger to the login form, got %s", loc)
		assert.Equal(t, 401, eval[int](t, ctx, `fetch("/api/events").then(r => r.status)`))
		assert.Equal(t, 401, eval[int](t, ctx, `fetch("/api/session").then(r => r.status)`))
	})

	t.Run("a wrong password is refused, then rate limited", func(t *testing.T) {
		for i := 1; i <= 6; i++ {
			run(t, ctx,
				chromedp.Navigate(s.web.URL+"/login"),
				chromedp.SendKeys(chromedp.ID("operator"), "guard-8"),
				chromedp.SendKeys(chromedp.ID("password"), "not-the-password"),
				chromedp.Click(chromedp.ID("login-submit")),
				chromedp.WaitVisible(chromedp.ID("login-error")),
			)
			msg := get(t, ctx, chromedp.Text(chromedp.ID("login-error")))
			if i <= 5 {
				assert.Contains(t, msg, "Wrong operator id or password", "attempt %d", i)
			} else {
				assert.Contains(t, msg, "Too many failed logins", "attempt %d", i)
			}
		}
		// Even the right password is refused while the account is limited.
		run(t, ctx,
			chromedp.Navigate(s.web.URL+"/login"),
			chromedp.SendKeys(chromedp.ID("operator"), "guard-8"),
			chromedp.SendKeys(chromedp.ID("password"), "pw-guard-8"),
			chromedp.Click(chromedp.ID("login-submit")),
			chromedp.WaitVisible(chromedp.ID("login-error")),
		)
		msg := get(t, ctx, chromedp.Text(chromedp.ID("login-error")))
		assert.Contains(t, msg, "Too many failed logins")
	})

	login(t, ctx, s, "guard-7")
	until(t, ctx, "four tiles", `document.querySelectorAll("#tiles article").length === 4`)

	t.Run("an action without the CSRF token is refused", func(t *testing.T) {
		send("room-2", roomclient.StartVisit("v-csrf", time.Hour))
		status := eval[int](t, ctx, `fetch("/api/rooms/room-2/action/end_visit", {method: "POST", body: "{}"}).then(r => r.status)`)
		assert.Equal(t, 403, status)
		status = eval[int](t, ctx, `fetch("/api/rooms/room-2/action/end_visit", {method: "POST", body: "{}", headers: {"X-CSRF-Token": "forged"}}).then(r => r.status)`)
		assert.Equal(t, 403, status)
		st := send("room-2", roomclient.GetState())
		assert.Equal(t, "in_visit", st.State.Phase, "the refused action never reached the room")
	})

	t.Run("a visit's countdown matches ends_at", func(t *testing.T) {
		st := send("room-2", roomclient.GetState())
		require.NotNil(t, st.State.Visit)
		ends := st.State.Visit.EndsAt.Time
		until(t, ctx, "room-2's countdown", tile("room-2")+`.querySelector(".countdown[data-remaining-s]")`)
		// The page redraws four times a second and shows whole seconds
		// rounded up: what it shows lies within a second of ends_at minus
		// the time between before and after the read.
		for range 3 {
			before := wallclock.Until(ends).Seconds()
			got := eval[[]any](t, ctx, `(() => { const c = `+tile("room-2")+`.querySelector(".countdown"); return [Number(c.dataset.remainingS), c.textContent] })()`)
			after := wallclock.Until(ends).Seconds()
			left, text := got[0].(float64), got[1].(string)
			assert.True(t, left <= before+1 && left >= after-1.5, "countdown %v s, ends_at says %v to %v s", left, after, before)
			var h, m, sec int
			_, err := fmt.Sscanf(text, "%d:%d:%d left", &h, &m, &sec)
			require.NoError(t, err, "countdown text %q", text)
			shown := float64(h*3600 + m*60 + sec)
			assert.True(t, shown <= before+1.5 && shown >= after-1.5, "countdown shows %q, ends_at says %v to %v s", text, after, before)
			// Next sample once the page has redrawn its times twice.
			ticks := eval[int](t, ctx, `window.guardboard.ticks`)
			until(t, ctx, "the page's clock", fmt.Sprintf(`window.guardboard.ticks >= %d`, ticks+2))
		}
		assert.Equal(t, "visit", eval[string](t, ctx, tile("room-2")+`.dataset.category`))
		assert.Empty(t, eval[string](t, ctx, tile("room-2")+`.querySelector("[data-presence]") ? "shown" : ""`),
			"no presence during a visit")
	})

	t.Run("the page hides presence in a visit even if it was sent", func(t *testing.T) {
		for _, phase := range []string{"in_visit", "overtime", "inspection"} {
			eval[bool](t, ctx, `(() => { window.guardboard.apply({room: "zz-forged", category: "visit", link: "online", phase: "`+phase+`",
				door: "closed", lock: "unlocked", presence: "present", alerts: [], heartbeat_s: 30}); return true })()`)
			until(t, ctx, "the forged tile", tile("zz-forged")+`.dataset.phase === "`+phase+`"`)
			assert.NotContains(t, eval[string](t, ctx, tile("zz-forged")+`.textContent`), "Presence", phase)
		}
		eval[bool](t, ctx, `(() => { window.guardboard.apply({room: "zz-forged", category: "idle", link: "online", phase: "idle",
			door: "closed", lock: "unlocked", presence: "present", alerts: [], heartbeat_s: 30}); return true })()`)
		until(t, ctx, "presence shown when idle (the check can fail)", tile("zz-forged")+`.textContent.includes("Presence: somebody inside")`)
		eval[bool](t, ctx, `(() => { location.reload(); return true })()`)
		until(t, ctx, "the board again, without the forged tile", `document.body.dataset.stream === "open" && document.querySelectorAll("#tiles article").length === 4`)
	})

	t.Run("a panic appears, rings once armed, and acknowledging it silences it", func(t *testing.T) {
		assert.Equal(t, "unarmed", eval[string](t, ctx, `document.body.dataset.sound`))
		assert.True(t, eval[bool](t, ctx, `!document.getElementById("sound-banner").hidden`), "the board shows loudly that sound is not armed")
		run(t, ctx, chromedp.Click(chromedp.ID("arm")))
		until(t, ctx, "sound armed", `document.body.dataset.sound === "off" && window.guardboard.audioState === "running"`)

		require.NoError(t, s.rooms["room-1"].Sim().SetPoint("bed", controller.LevelActive))
		until(t, ctx, "the panic on room-1's tile", tile("room-1")+`.querySelector('li.alert[data-kind="panic"][data-acked="false"]')`)
		assert.Equal(t, "critical", eval[string](t, ctx, tile("room-1")+`.dataset.category`))
		until(t, ctx, "the panic first on the board (tiles are reordered at the next frame)", `document.querySelector("#tiles article").dataset.room === "room-1"`)
		assert.Contains(t, eval[string](t, ctx, tile("room-1")+`.querySelector('li.alert[data-kind="panic"]').textContent`), "PANIC at bed")
		until(t, ctx, "the critical sound", `document.body.dataset.sound === "critical" && window.guardboard.beeps > 0 && document.body.dataset.lastRing === "critical"`)
		beeps := eval[int](t, ctx, `window.guardboard.beeps`)
		until(t, ctx, "the sound repeating", `window.guardboard.beeps > `+itoa(beeps))
		screenshot(t, ctx, "board-panic.png")

		click(t, ctx, `article[data-room="room-1"] li[data-kind="panic"] button[data-action="ack_alert"]`)
		until(t, ctx, "the acknowledgement by guard-7", tile("room-1")+`.querySelector('li[data-kind="panic"] [data-acked-by="guard-7"]')`)
		until(t, ctx, "silence", `document.body.dataset.sound === "off"`)
		assert.Contains(t, eval[string](t, ctx, tile("room-1")+`.querySelector("[data-reply]").textContent`), "acknowledgement: done (by guard-7)")
		beeps = eval[int](t, ctx, `window.guardboard.beeps`)
		// An acknowledgement silences at once: no burst in the next 2.5 s
		// of the page's clock (it decides its sound every 250 ms too).
		ticks := eval[int](t, ctx, `window.guardboard.ticks`)
		until(t, ctx, "2.5 s of the page's clock", fmt.Sprintf(`window.guardboard.ticks >= %d`, ticks+11))
		assert.Equal(t, beeps, eval[int](t, ctx, `window.guardboard.beeps`), "no ring after the acknowledgement: %s; rooms %s",
			eval[string](t, ctx, `JSON.stringify(window.guardboard.rings.slice(-3).map(r => [r.level, r.key]))`),
			eval[string](t, ctx, `JSON.stringify([...window.guardboard.rooms.values()].map(v => [v.room, v.category, v.link, v.no_contact]))`))
		until(t, ctx, "the acknowledgement in the log", `document.querySelector('#log-list li[data-log-type="alert_acked"][data-log-room="room-1"]')`)
	})

	t.Run("the room's refusal is shown with its code", func(t *testing.T) {
		// room-1's panic is acknowledged but not reset on site: setting it
		// ready is allowed (idle), but taking room-3 out of service and
		// asking for set_ready there answers; use end_visit on an idle room.
		res := eval[map[string]any](t, ctx, `fetch("/api/session").then(r => r.json()).then(s =>
			fetch("/api/rooms/room-3/action/end_visit", {method: "POST", body: "{}", headers: {"X-CSRF-Token": s.csrf}}).then(r => r.json()))`)
		assert.Equal(t, false, res["ok"])
		assert.Equal(t, "no_visit", res["code"])
		assert.Equal(t, "guard-7", res["operator"])
	})

	t.Run("the tester panel's clicks reach the room and its lamps follow", func(t *testing.T) {
		until(t, ctx, "the tester toggle", `!document.getElementById("tester-toggle").hidden`)
		run(t, ctx, chromedp.Click(chromedp.ID("tester-toggle")))
		until(t, ctx, "the panel", `document.getElementById("tester-room")`)
		eval[bool](t, ctx, `(() => { const s = document.getElementById("tester-room"); s.value = "room-4"; s.dispatchEvent(new Event("change")); return true })()`)
		until(t, ctx, "room-4's lamps", `document.getElementById("tester-room").value === "room-4" && document.querySelector('.lamp[data-lamp="alarm_light"][data-mode="off"]')`)

		click(t, ctx, `#tester button[data-sim="door-open"]`)
		until(t, ctx, "door open on the tile", tile("room-4")+`.textContent.includes("Door: open")`)
		assert.Equal(t, "open", send("room-4", roomclient.GetState()).State.Door, "the room itself says open")

		click(t, ctx, `#tester button[data-sim="panic-press-toilet"]`)
		until(t, ctx, "the alarm light's panic pattern", `document.querySelector('.lamp[data-lamp="alarm_light"]').dataset.mode === "panic"`)
		until(t, ctx, "the reassurance lamp blinking", `document.querySelector('.lamp[data-lamp="reassurance"]').dataset.mode === "blink"`)
		assert.Equal(t, "panic", eval[string](t, ctx, `document.querySelector('.lamp[data-lamp="alarm_sounder"]').dataset.mode`))
		until(t, ctx, "room-4's panic at toilet", tile("room-4")+`.querySelector('li[data-kind="panic"]').textContent.includes("toilet")`)
		screenshot(t, ctx, "tester-panel.png")

		click(t, ctx, `article[data-room="room-4"] li[data-kind="panic"] button[data-action="ack_alert"]`)
		until(t, ctx, "the sounder silenced and the reassurance lamp steady",
			`document.querySelector('.lamp[data-lamp="alarm_sounder"]').dataset.mode === "off" && document.querySelector('.lamp[data-lamp="reassurance"]').dataset.mode === "on"`)
		// The key resets only a released point, and the two lines settle
		// independently, each after its debounce: a turn of the key within
		// a debounce of the release could be seen first and do nothing.
		// Nothing shows the release itself, so the door is closed after
		// it, and the key turned once the tile shows the door closed: the
		// release, sent before, settled before the door did.
		// A change of the room's state updates the panel in place: a panel
		// built again between a click's press and its release lost the click.
		eval[bool](t, ctx, `(window.bridgeButton = document.querySelector('#tester button[data-sim="panic-bridge-toilet"]')) !== null`)
		click(t, ctx, `#tester button[data-sim="panic-release-toilet"]`)
		click(t, ctx, `#tester button[data-sim="door-closed"]`)
		until(t, ctx, "door closed on the tile", tile("room-4")+`.textContent.includes("Door: closed")`)
		until(t, ctx, "door closed in the tester panel", `document.querySelector('#tester legend[data-legend="door"]').textContent.includes("closed")`)
		assert.True(t, eval[bool](t, ctx, `document.querySelector('#tester button[data-sim="panic-bridge-toilet"]') === window.bridgeButton`),
			"the tester panel's buttons are the same elements after the room's state changed")
		click(t, ctx, `#tester button[data-sim="staff-on"]`)
		until(t, ctx, "the panic reset on site", tile("room-4")+` && !`+tile("room-4")+`.querySelector('li[data-kind="panic"]')`)
		click(t, ctx, `#tester button[data-sim="staff-off"]`)
		// Bridge and mend reach the room's wires.
		click(t, ctx, `#tester button[data-sim="panic-bridge-toilet"]`)
		if !assert.Eventually(t, func() bool { return s.rooms["room-4"].Sim().Wire(controller.InputPanic, 1) == contract.WireBridged }, browserWait, 10*time.Millisecond) {
			sm := s.rooms["room-4"].Sim()
			t.Fatalf("room-4's toilet point never read bridged: its panic lines' wires are %s (bed), %s (toilet)", sm.Wire(controller.InputPanic, 0), sm.Wire(controller.InputPanic, 1))
		}
		click(t, ctx, `#tester button[data-sim="panic-mend-toilet"]`)
		require.Eventually(t, func() bool { return s.rooms["room-4"].Sim().Wire(controller.InputPanic, 1) == contract.WireSound }, browserWait, 10*time.Millisecond)
		click(t, ctx, "#tester-toggle")
	})

	t.Run("after the stream drops the page resumes without missing an alert", func(t *testing.T) {
		require.Equal(t, 1, eval[int](t, ctx, `window.guardboard.snapshots`))
		head := s.board.History.Head()
		s.board.History.DropAll()
		require.NoError(t, s.rooms["room-4"].Sim().SetPoint("bed", controller.LevelActive))
		require.Eventually(t, func() bool { return s.board.History.Head() != head }, browserWait, 10*time.Millisecond)
		until(t, ctx, "room-4's new panic in the log", `document.querySelector('#log-list li[data-log-type="alert_raised"][data-log-room="room-4"]') &&
			[...document.querySelectorAll('#log-list li[data-log-type="alert_raised"][data-log-room="room-4"]')].some(li => li.textContent.includes("bed"))`)
		assert.Equal(t, 1, eval[int](t, ctx, `window.guardboard.snapshots`), "resumed from the last event id, not from a new snapshot")
		click(t, ctx, `article[data-room="room-4"] li[data-kind="panic"][data-acked="false"] button[data-action="ack_alert"]`)
		until(t, ctx, "room-4 acknowledged", tile("room-4")+`.querySelector('li[data-kind="panic"] [data-acked-by="guard-7"]')`)
	})

	t.Run("a room killed with SIGKILL during a visit is an alarm on top until acknowledged", func(t *testing.T) {
		assert.Equal(t, "online", eval[string](t, ctx, tile("room-3")+`.dataset.link`))
		require.True(t, send("room-3", roomclient.StartVisit("v-killed", time.Hour)).OK)
		until(t, ctx, "room-3 in a visit", tile("room-3")+`.dataset.phase === "in_visit"`)
		until(t, ctx, "silence before", `document.body.dataset.sound === "off"`)
		p := s.procs["room-3"]
		require.NoError(t, p.Process.Signal(syscall.SIGKILL))
		_ = p.Wait()
		// Nothing from the room reaches the board now, its panic points
		// included: an alarm, on top, with the critical sound.
		until(t, ctx, "room-3 out of reach (its Last Will), critical", tile("room-3")+`.dataset.link === "offline" && `+tile("room-3")+`.dataset.category === "critical"`)
		until(t, ctx, "room-3 first on the board", `document.querySelector("#tiles article").dataset.room === "room-3"`)
		assert.Contains(t, eval[string](t, ctx, tile("room-3")+`.textContent`), "No contact with room-3 since")
		assert.Contains(t, eval[string](t, ctx, tile("room-3")+`.textContent`), "its panic buttons do not reach this board. Send someone.")
		assert.NotContains(t, eval[string](t, ctx, `document.body.textContent`), "last will")
		until(t, ctx, "the critical sound", `document.body.dataset.sound === "critical" && document.body.dataset.lastRing === "critical"`)
		click(t, ctx, `article[data-room="room-3"] button[data-action="ack_contact"]`)
		until(t, ctx, "acknowledged by guard-7, and silence", tile("room-3")+`.dataset.category === "no_contact" && document.body.dataset.sound === "off"`)
		assert.Contains(t, eval[string](t, ctx, tile("room-3")+`.textContent`), "acknowledged by guard-7")
		until(t, ctx, "the acknowledgement in the log", `document.querySelector('#log-list li[data-log-type="contact_acked"][data-log-room="room-3"]')`)
	})

	t.Run("stopping the broker shows the stale banner, and it recovers", func(t *testing.T) {
		assert.True(t, eval[bool](t, ctx, `document.getElementById("stale-banner").hidden`))
		s.mq.Stop()
		until(t, ctx, "the stale banner", `!document.getElementById("stale-banner").hidden && document.body.dataset.broker === "lost"`)
		assert.Contains(t, eval[string](t, ctx, `document.getElementById("stale-banner").textContent`), "DATA STALE")
		// The board's own fault rings. (Here the rooms' heartbeat is 5 s:
		// a room in a visit may look out of reach before the board's
		// keepalive finds the broker gone, and ring critical.)
		until(t, ctx, "the board's own fault rings", `document.body.dataset.sound === "warning" || document.body.dataset.sound === "critical"`)
		s.mq.Restart()
		until(t, ctx, "the banner gone", `document.getElementById("stale-banner").hidden && document.body.dataset.broker === "connected"`)
		until(t, ctx, "room-2 online again", tile("room-2")+`.dataset.link === "online"`)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
