package board_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
	"github.com/roomd/roomd/wallclock"
)

var (
	fpRooms     = flag.Int("board.rooms", 200, "BenchmarkBoardFootprint: rooms")
	fpVisits    = flag.Int("board.visits", 20, "BenchmarkBoardFootprint: rooms in a 50-minute visit from the start")
	fpSpeed     = flag.Float64("board.speed", 15, "BenchmarkBoardFootprint: how much faster than real time the rooms' clock runs")
	fpSimulated = flag.Duration("board.simulated", time.Hour, "BenchmarkBoardFootprint: simulated time measured")
)

// fpRoomYAML is a room as shipped (keepalive 5s), but for its heartbeat:
// the state heartbeat runs on a real-time ticker, so it is 30s divided by
// the speed (at least 1s): the compressed run carries the heartbeats of the
// simulated time (15x: 2s, 120 states per room and simulated hour).
const fpRoomYAML = `room: %s
state_dir: %s
policy: {preset: italy}
device: {backend: sim}
mqtt: {broker: %q, heartbeat: %s, keepalive: 5s}
`

// procStat reads a process's CPU time (user+system) and resident memory.
func procStat(pid int) (cpu time.Duration, rssKiB, hwmKiB int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, ln := range strings.Split(string(s), "\n") {
		k, v, _ := strings.Cut(ln, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rssKiB = n
		case "VmHWM":
			hwmKiB = n
		}
	}
	return cpu, rssKiB, hwmKiB, nil
}

// pageMetrics reads the page's run-time metrics (CDP Performance domain).
func pageMetrics(ctx context.Context, t *chromedp.Target) (map[string]float64, error) {
	res, err := cdp.Call(ctx, t, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, x := range res.Metrics {
		m[x.Name] = x.Value
	}
	return m, nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// BenchmarkBoardFootprint runs -board.rooms real rooms (simulator backend,
// heartbeat 30 s as shipped) on a clock -board.speed times faster than real
// time, -board.visits of them in a 50-minute visit from the start (warnings,
// time_up, its escalation and repeats every minute, never acknowledged),
// against mosquitto, with the board as its own process (the built
// guardboard) and one browser page on it. It measures, over
// -board.simulated of the rooms' time (the state heartbeat, a real-time
// ticker in roomd, is 30s/speed so that the run carries the simulated
// time's heartbeats; the board calls a room stale after two of them): the board process's CPU time (from
// /proc) and its resident memory (peak), and the page's main-thread busy
// time (CDP Performance TaskDuration) and its JS heap (peak). The rooms
// run in this process and are not counted.
//
//	go test ./board -run '^$' -bench BoardFootprint -benchtime 1x -timeout 30m
//	go test ./board -run '^$' -bench BoardFootprint -benchtime 1x -board.speed 1 -board.simulated 2m
func BenchmarkBoardFootprint(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run is the measurement: -benchtime 1x")
	}
	ctx := browser(b)
	mq := mqtttest.Mosquitto(b, mqtttest.MosquittoOptions{AllowAnonymous: true, ExtraConfig: "max_queued_messages 100000\n"})
	clock := daemon.NewFastClock(*fpSpeed)
	shm := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "board-footprint-")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(d) })
		shm = d
	}
	heartbeat := max(time.Second, time.Duration(float64(30*time.Second) / *fpSpeed)).Round(time.Second)
	ids := make([]string, *fpRooms)
	for i := range ids {
		ids[i] = fmt.Sprintf("room-%03d", i+1)
		id := ids[i]
		dir := filepath.Join(shm, id)
		require.NoError(b, os.MkdirAll(dir, 0o700))
		roomtest.Start(b, roomtest.Options{Broker: mq.URL(), Room: id, Dir: dir,
			Config: func(c *configs.Config) {
				parsed, err := configs.Parse(fmt.Appendf(nil, fpRoomYAML, id, dir, mq.URL(), heartbeat), "room "+id)
				require.NoError(b, err)
				*c = *parsed
			},
			Options: func(o *room.Options) { o.Clock, o.MinPlausible = clock, clock.Now().Add(-time.Hour) }})
	}

	// The board, as its own process.
	bin := filepath.Join(b.TempDir(), "guardboard")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/guardboard").CombinedOutput()
	require.NoError(b, err, "%s", out)
	accounts := filepath.Join(b.TempDir(), "accounts")
	h, err := bcrypt.GenerateFromPassword([]byte("pw-guard-7"), bcrypt.MinCost)
	require.NoError(b, err)
	require.NoError(b, os.WriteFile(accounts, []byte("guard-7:"+string(h)+"\n"), 0o600))
	addr := freeAddr(b)
	cmd := exec.Command(bin, "serve", "--accounts", accounts, "--broker", mq.URL(), "--listen", addr, "--log-level", "error")
	cmd.Stderr = os.Stderr
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	require.Eventually(b, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 30*time.Second, 50*time.Millisecond)

	run(b, ctx,
		chromedp.Navigate("http://"+addr+"/login"),
		chromedp.WaitVisible(chromedp.ID("operator")),
		chromedp.SendKeys(chromedp.ID("operator"), "guard-7"),
		chromedp.SendKeys(chromedp.ID("password"), "pw-guard-7"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	until(b, ctx, "every tile online", fmt.Sprintf(`document.querySelectorAll('#tiles article[data-link="online"]').length === %d`, len(ids)))
	get(b, ctx, func(ctx context.Context, t *chromedp.Target) (struct{}, error) {
		_, err := cdp.Call(ctx, t, performance.Enable, performance.EnableParams{})
		return struct{}{}, err
	})

	// The visits, sent on the rooms' clock (expires_at must be ahead of it).
	dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
	defer dcancel()
	booking, err := roomclient.Dial(dctx, roomclient.Options{Broker: mq.URL(), ClientID: "booking", CleanSession: true, Now: clock.Now})
	require.NoError(b, err)
	defer booking.Close()
	for i := range min(*fpVisits, len(ids)) {
		r, err := booking.Send(dctx, ids[i], roomclient.StartVisit(fmt.Sprintf("v-%d", i), 50*time.Minute))
		require.NoError(b, err)
		require.NoError(b, r.Err())
	}

	pid := cmd.Process.Pid
	cpu0, _, _, err := procStat(pid)
	require.NoError(b, err)
	m0 := get(b, ctx, chromedp.Action[map[string]float64](pageMetrics))
	load0 := loadavg()
	simStart, realStart := clock.Now(), wallclock.Now()
	var maxRSS int64
	var maxHeap, loadSum float64
	samples := 0
	b.ResetTimer()
	for clock.Now().Sub(simStart) < *fpSimulated {
		time.Sleep(time.Second)
		_, rss, _, err := procStat(pid)
		require.NoError(b, err)
		maxRSS = max(maxRSS, rss)
		m := get(b, ctx, chromedp.Action[map[string]float64](pageMetrics))
		maxHeap = max(maxHeap, m["JSHeapUsedSize"])
		loadSum += loadavg()
		samples++
	}
	b.StopTimer()
	realDur := wallclock.Since(realStart)
	cpu1, rss1, hwm, err := procStat(pid)
	require.NoError(b, err)
	m1 := get(b, ctx, chromedp.Action[map[string]float64](pageMetrics))
	lastID := eval[string](b, ctx, `window.guardboard.lastId`)
	_, n, _ := strings.Cut(lastID, ".")
	updates, _ := strconv.Atoi(n)
	tiles := eval[int](b, ctx, `document.querySelectorAll("#tiles article").length`)
	require.Equal(b, len(ids), tiles)
	crit := eval[int](b, ctx, `document.querySelectorAll('#tiles article[data-category="critical"]').length`)
	stats := eval[string](b, ctx, `JSON.stringify(window.guardboard.stats)`)

	boardCPU := (cpu1 - cpu0).Seconds()
	pageTask := m1["TaskDuration"] - m0["TaskDuration"]
	b.ReportMetric(boardCPU, "board-cpu-s")
	b.ReportMetric(100*boardCPU/realDur.Seconds(), "board-cpu-%")
	b.ReportMetric(float64(maxRSS)/1024, "board-rss-max-MiB")
	b.ReportMetric(float64(hwm)/1024, "board-rss-peak-MiB")
	b.ReportMetric(pageTask, "page-busy-s")
	b.ReportMetric(m1["ScriptDuration"]-m0["ScriptDuration"], "page-script-s")
	b.ReportMetric(m1["LayoutDuration"]-m0["LayoutDuration"]+m1["RecalcStyleDuration"]-m0["RecalcStyleDuration"], "page-style-layout-s")
	b.ReportMetric(100*pageTask/realDur.Seconds(), "page-busy-%")
	b.ReportMetric(maxHeap/(1<<20), "page-heap-max-MiB")
	b.ReportMetric(m1["Nodes"], "page-dom-nodes")
	b.ReportMetric(float64(updates), "updates")
	b.ReportMetric(realDur.Seconds(), "real-s")
	b.ReportMetric(loadSum/float64(max(samples, 1)), "loadavg")
	b.Logf("%d rooms (%d in visits, %d critical at the end), %s of room time at %gx in %s real; board pid %d: CPU %.1f s, RSS now %.1f MiB, peak %.1f MiB; page busy %.1f s, JS heap max %.1f MiB, %d DOM nodes; %d updates (%s); load %.2f → %.2f",
		len(ids), min(*fpVisits, len(ids)), crit, fpSimulated.String(), *fpSpeed, realDur.Round(time.Second), pid, boardCPU,
		float64(rss1)/1024, float64(hwm)/1024, pageTask, maxHeap/(1<<20), int(m1["Nodes"]), updates, stats, load0, loadavg())
}
