package board_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/roomd/roomd/access"
	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/link/broker"
	"github.com/roomd/roomd/link/mqtttest"
	"github.com/roomd/roomd/room"
	"github.com/roomd/roomd/room/roomtest"
	"github.com/roomd/roomd/roomclient"
)

// -screenshots writes the tests' screenshots into docs/img (the README
// shows them); without it they go to the test's temporary directory.
var screenshots = flag.Bool("screenshots", false, "write the browser tests' screenshots into docs/img")

// browserWait bounds every wait for the page.
const browserWait = 30 * time.Second

// chromium returns the browser's path; without one the test is skipped,
// or fails under CI=true.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testtier.Missing(t, "chromium is not installed (apt-get install chromium; .ci/install-deps does): the board's browser tests cannot run")
	return ""
}

// browser starts a headless chromium with a fresh profile for the test, in
// English.
func browser(t testing.TB) context.Context { t.Helper(); return browserIn(t, "en-GB") }

// browserIn starts a headless chromium whose language (navigator.language
// and Accept-Language) is lang.
func browserIn(t testing.TB, lang string) context.Context {
	t.Helper()
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1920, 1080),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		// Web Audio plays without a click in a test (the page still asks
		// for one: Arm sound).
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// run runs browser actions with a bound.
func run(t testing.TB, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// get runs one browser action that returns a value, with a bound.
func get[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// click clicks the element sel with the mouse, as a guard does; it tries
// again when the element was redrawn between finding it and clicking it.
func click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	var err error
	for range 5 {
		cctx, cancel := context.WithTimeout(ctx, browserWait)
		err = chromedp.Do(cctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil || !strings.Contains(err.Error(), "Could not find node") {
			break
		}
	}
	require.NoError(t, err, "click %s", sel)
}

// eval returns the value of a JavaScript expression (promises awaited).
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// until waits until the JavaScript condition is true in the page.
func until(t testing.TB, ctx context.Context, what, cond string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		if err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (%s): %v", what, cond, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// screenshot saves a PNG of the page.
func screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png := get(t, ctx, chromedp.FullScreenshot(100))
	dir := t.TempDir()
	if *screenshots {
		dir = filepath.Join("..", "docs", "img")
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s", path)
	return path
}

// site is a broker with the shipped ACL, simulated rooms on it, and the
// board serving them.
type site struct {
	mq      *mqtttest.MosquittoBroker
	rooms   map[string]*roomtest.Room
	cables  map[string]*broker.Cable // each room's link to the broker
	procs   map[string]*exec.Cmd     // rooms run as roomd processes
	board   *board.Board
	web     *httptest.Server
	booking *roomclient.Client
	cancel  context.CancelFunc
}

// Passwords of the site's identities.
var sitePasswords = map[string]string{
	"guard-station": "pw-station", "sim-driver": "pw-sim", "booking": "pw-booking",
	"room-1": "pw-room-1", "room-2": "pw-room-2", "room-3": "pw-room-3", "room-4": "pw-room-4",
	// A room identity of the broker that no room runs as: it publishes
	// forged messages in the tests, as a compromised room could; guard-7 is
	// an operator's identity, which may publish under its own name.
	"room-9": "pw-room-9", "room-8": "pw-room-8", "guard-7": "pw-guard-7",
}

// roomYAML is a simulated room with two named panic points and every output.
const roomYAML = `room: %s
state_dir: %s
policy: %s
device:
  backend: sim
  inputs:
    door: {pin: GPIO17}
    lock: {pin: GPIO27}
    presence: [{pin: GPIO22}]
    panic: [{name: bed, pin: GPIO23}, {name: toilet, pin: GPIO18}]
    staff: {pin: GPIO24, active_low: true}
  outputs:
    in_use: {pin: GPIO13}
    warning: {pin: GPIO19}
    alarm_light: {pin: GPIO26}
    alarm_sounder: {pin: GPIO20}
    reassurance: {pin: GPIO21}
mqtt: {broker: %q, username: %s, password_file: %s, heartbeat: 5s, keepalive: 2s}
commands: {operators: [guard-*]}
`

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// siteOptions describe a test site.
type siteOptions struct {
	Rooms, Operators []string
	// Policy is the rooms' policy in YAML ("" means {preset: italy}).
	Policy string
	// Processes are more rooms, each run as a roomd process built from
	// this tree, as a Pi runs it.
	Processes []string
	// Rooms (board.Options.Rooms): the site's rooms (nil: every id).
	Known []string
}

// buildRoomd builds the roomd binary for the test.
func buildRoomd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "roomd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/roomd/roomd/cmd/roomd").CombinedOutput()
	require.NoError(t, err, "go build roomd: %s", out)
	return bin
}

// startSite starts mosquitto (shipped ACL plus a sim-driver identity, as a
// test bench has it), the rooms, and the board with one account per
// operator given (password "pw-"+id).
func startSite(t testing.TB, o siteOptions) *site {
	t.Helper()
	roomIDs, operators := o.Rooms, o.Operators
	if o.Policy == "" {
		o.Policy = "{preset: italy}"
	}
	dir := t.TempDir()
	users := map[string]string{}
	for id, pw := range sitePasswords {
		users[id] = pw
	}
	for _, id := range append(roomIDs, o.Processes...) {
		users[id] = "pw-" + id
	}
	// The site's rooms are every user that is no other identity of the
	// site: the rooms run here and room-9, a room identity that no room
	// runs as (it publishes forged messages, as a compromised room could).
	aclFile := mqtttest.SiteACL(t, func(s *access.Site) {
		s.Rooms, s.SimDriver = nil, "sim-driver"
		for id := range users {
			if _, known := s.Identity(id); !known && id != "sim-driver" {
				s.Rooms = append(s.Rooms, id)
			}
		}
		slices.Sort(s.Rooms)
	})
	mq := mqtttest.Mosquitto(t, mqtttest.MosquittoOptions{Users: users, ACLFile: aclFile})
	s := &site{mq: mq, rooms: map[string]*roomtest.Room{}, procs: map[string]*exec.Cmd{}, cables: map[string]*broker.Cable{}}
	addr := strings.TrimPrefix(mq.URL(), "tcp://")
	for _, id := range roomIDs {
		pwFile := writeFile(t, dir, id+".pw", users[id])
		cable := broker.NewCable(addr)
		s.cables[id] = cable
		roomLog := &lockedLog{}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("room %s (in process):\n%s", id, roomLog.String())
			}
		})
		s.rooms[id] = roomtest.Start(t, roomtest.Options{Broker: mq.URL(), Room: id, Logger: slog.New(slog.NewTextHandler(roomLog, nil)), Config: func(c *configs.Config) {
			parsed, err := configs.Parse(fmt.Appendf(nil, roomYAML, id, c.StateDir, o.Policy, mq.URL(), id, pwFile), "room "+id)
			require.NoError(t, err)
			*c = *parsed
		}, Options: func(ro *room.Options) { ro.Dial = cable.Dial }})
	}
	if len(o.Processes) > 0 {
		bin := buildRoomd(t)
		for _, id := range o.Processes {
			stateDir := filepath.Join(dir, id+".state")
			require.NoError(t, os.Mkdir(stateDir, 0o700))
			pwFile := writeFile(t, dir, id+".pw", users[id])
			cfg := writeFile(t, dir, id+".yaml", fmt.Sprintf(roomYAML, id, stateDir, o.Policy, mq.URL(), id, pwFile))
			cmd := exec.Command(bin, "run", "--config", cfg)
			logs := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = logs, logs
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "WATCHDOG_USEC=")
			require.NoError(t, cmd.Start(), "start roomd for %s", id)
			s.procs[id] = cmd
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
				if t.Failed() {
					t.Logf("roomd %s:\n%s", id, logs.String())
				}
			})
		}
	}
	var lines []string
	for _, op := range operators {
		h, err := bcrypt.GenerateFromPassword([]byte("pw-"+op), bcrypt.MinCost)
		require.NoError(t, err)
		lines = append(lines, op+":"+string(h))
	}
	accounts, err := board.OpenAccounts(writeFile(t, dir, "accounts", strings.Join(lines, "\n")+"\n"))
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s.board = board.New(board.Options{Broker: mq.URL(), Password: sitePasswords["guard-station"],
		SimUsername: "sim-driver", SimPassword: sitePasswords["sim-driver"], Logger: log, Rooms: o.Known})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.board.Run(ctx) }()
	s.cancel = cancel
	s.web = httptest.NewServer(board.NewServer(board.ServerOptions{Board: s.board, Accounts: accounts, Logger: log, Title: "Test site",
		Links: siteCables{s}}))
	t.Cleanup(func() {
		s.web.CloseClientConnections()
		cancel()
		<-done
		s.web.Close()
	})
	dctx, dcancel := context.WithTimeout(context.Background(), browserWait)
	defer dcancel()
	s.booking, err = roomclient.Dial(dctx, roomclient.Options{Broker: mq.URL(), Username: "booking", Password: sitePasswords["booking"], CleanSession: true})
	require.NoError(t, err)
	t.Cleanup(s.booking.Close)
	return s
}

// login logs operator in through the form and waits for the board.
func login(t testing.TB, ctx context.Context, s *site, operator string) {
	t.Helper()
	run(t, ctx,
		chromedp.Navigate(s.web.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("operator")),
		chromedp.SendKeys(chromedp.ID("operator"), operator),
		chromedp.SendKeys(chromedp.ID("password"), "pw-"+operator),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	until(t, ctx, "the board after login", `document.body.dataset.stream === "open" && document.querySelectorAll("#tiles article").length > 0`)
}

// siteCables lets the tester panel cut and restore the site's rooms' links.
type siteCables struct{ s *site }

func (c siteCables) Cuttable() []string {
	var out []string
	for id := range c.s.cables {
		out = append(out, id)
	}
	return out
}

func (c siteCables) CutLink(room string, cut bool) error {
	cable := c.s.cables[room]
	if cable == nil {
		return fmt.Errorf("no room %q", room)
	}
	if cut {
		cable.Cut()
	} else {
		cable.Restore()
	}
	return nil
}

func tile(room string) string {
	return fmt.Sprintf(`document.querySelector('article[data-room=%q]')`, room)
}

// lockedLog collects a room's log lines for a failing test.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
