// Package configs loads roomd's YAML configuration and holds the policy
// presets (one YAML file per jurisdiction in configs/policies, embedded).
//
// Loading is strict: unknown keys, duplicate keys, values of the wrong kind,
// bad durations and contradictions are all errors, and every problem in a file
// is reported at once (joined with errors.Join), each a *FieldError naming the
// field path, e.g.
//
//	roomd.yaml:12: device.inputs.door.debounce: "50xs" is not a duration (want e.g. 30ms, 5s, 10m, 2h)
//
// Relative paths in a config (state_dir, TLS files, password_file) are taken
// relative to the working directory of the process, not to the config file.
package configs

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/device/eol"
)

// Config is roomd's effective configuration: defaults, preset and file merged
// and validated.
type Config struct {
	Room     string // the room id, see contract.ValidRoom
	StateDir string // directory of the journal

	// Policy is the effective policy: the preset (if any) with the fields
	// given inline laid over it. Policy.Name is the preset's name, or
	// "custom" when no preset was given.
	Policy       controller.Policy
	PolicyPreset string // the preset named in the file; "" if none

	Device        Device
	MQTT          MQTT
	HomeAssistant HomeAssistant
	Commands      Commands
	Journal       Journal
	Log           Log
	Metrics       Metrics
}

// Metrics configures the room's Prometheus metrics, off by default: a file
// that node_exporter's textfile collector serves (docs/metrics.md says
// why a file and not a listener, and what each metric tells).
type Metrics struct {
	// Textfile is the file roomd writes its metrics to, ending in .prom,
	// in node_exporter's textfile directory; empty: no metrics.
	Textfile string
	// Every is how often the file is written.
	Every time.Duration
}

// HomeAssistant configures Home Assistant MQTT discovery (opt-in): the room
// announces itself as a device on DiscoveryPrefix/device/roomd_ROOM/config
// and Home Assistant reads its state from the room's own topics.
type HomeAssistant struct {
	Enabled bool
	// DiscoveryPrefix is Home Assistant's discovery prefix (its default,
	// "homeassistant"); it must not be mqtt.base or lie under it.
	DiscoveryPrefix string
}

// Journal bounds the room's journal in the state directory.
type Journal struct {
	// MaxBytes bounds the journal on disk: above it, delivered entries are
	// deleted even inside the retention, and undelivered ones raise a
	// critical system_fault (they are never deleted).
	MaxBytes int64
	// Retention is how long delivered entries are kept: the window of
	// replay, and of answering a redelivered command with its first reply.
	Retention time.Duration
}

// Backend is the kind of I/O behind the room's inputs and outputs.
type Backend uint8

// The backends. The zero value is not a backend.
const (
	BackendGPIO Backend = iota + 1 // real GPIO lines via periph.io
	BackendSim                     // the simulator: no hardware
)

func (b Backend) String() string {
	switch b {
	case BackendGPIO:
		return "gpio"
	case BackendSim:
		return "sim"
	default:
		return fmt.Sprintf("backend(%d)", uint8(b))
	}
}

// Pull is the bias of an input line.
type Pull uint8

// The pulls. The zero value, PullNone, is what output lines carry.
const (
	PullNone Pull = iota // no bias: the circuit drives the line
	PullUp               // pulled up (the default for inputs)
	PullDown             // pulled down
)

func (p Pull) String() string {
	switch p {
	case PullNone:
		return "none"
	case PullUp:
		return "up"
	case PullDown:
		return "down"
	default:
		return fmt.Sprintf("pull(%d)", uint8(p))
	}
}

// LogFormat is the format of roomd's log lines.
type LogFormat uint8

// The log formats.
const (
	LogText LogFormat = iota // slog's text handler (key=value)
	LogJSON                  // slog's JSON handler
)

func (f LogFormat) String() string {
	if f == LogJSON {
		return "json"
	}
	return "text"
}

// Device is the room's hardware (or simulator) configuration.
type Device struct {
	Backend     Backend
	RereadEvery time.Duration // every input is re-read this often, as a safety net for missed edges
	Flap        Flap
	BlinkPeriod time.Duration // one on+off cycle of a blinking output
	Inputs      Inputs
	// Outputs maps each output role to its line. With the gpio backend
	// in_use, warning and alarm_light are present (the file's older key
	// "alarm" is read as alarm_light); alarm_sounder and reassurance are
	// optional. With sim it may be nil. Output lines carry PullNone and no
	// debounce.
	Outputs map[controller.Output]Line
	// Feedback maps a supervised output to the input line that reads it
	// back (a relay's auxiliary contact, active while the output is on);
	// nil when no output is supervised. Feedback lines carry no debounce.
	Feedback map[controller.Output]Line
	// FeedbackGrace is how long a read-back may differ from what is driven
	// before the output counts as failed (output_fault).
	FeedbackGrace time.Duration
	// MainsFail and BatteryLow are the status lines of a UPS (active: mains
	// lost, battery low); nil when not wired. They carry no debounce.
	MainsFail, BatteryLow *Line
	// Healthy is the output pulsed while roomd's loop runs, for an
	// external watchdog relay; nil when not wired.
	Healthy *Line
}

// Flap bounds how often an input may change before it counts as a sensor
// fault: more than MaxChanges changes within Window.
type Flap struct {
	MaxChanges int
	Window     time.Duration
}

// Inputs maps the input roles to lines. A nil pointer is a role with no
// line (only allowed for Staff with the gpio backend; anything with sim).
// Presence may hold several sensors: the room counts as occupied when any of
// them is active. Panic may hold several points, each with its Point name
// (one line may have none: it is the point "panic"). An empty list is nil.
type Inputs struct {
	Door, Lock, Staff *Line
	Presence          []Line
	Panic             []Line
}

// ByRole returns the configured lines per input role; roles with no line are
// absent from the map.
func (in Inputs) ByRole() map[controller.Input][]Line {
	m := map[controller.Input][]Line{}
	for _, r := range []struct {
		role controller.Input
		l    *Line
	}{{controller.InputDoor, in.Door}, {controller.InputLock, in.Lock}, {controller.InputStaff, in.Staff}} {
		if r.l != nil {
			m[r.role] = []Line{*r.l}
		}
	}
	if len(in.Presence) > 0 {
		m[controller.InputPresence] = in.Presence
	}
	if len(in.Panic) > 0 {
		m[controller.InputPanic] = in.Panic
	}
	return m
}

// Line is one GPIO line: either Pin (a name such as "GPIO17") or Chip and
// Line (e.g. "gpiochip0", 27), never both.
type Line struct {
	Pin       string
	Chip      string
	Line      int
	Pull      Pull
	ActiveLow bool          // the role is active when the line reads low
	Debounce  time.Duration // a level must hold this long to count (inputs only)
	Point     string        // a panic point's name ("bed"); empty for every other line
	// EOL, for an input, makes it an end-of-line supervised loop read
	// through an ADC (then Pin and Chip are empty); nil for a GPIO line.
	EOL *EOL
}

// EOL is an input wired as an end-of-line supervised loop, read through an
// ADS1115 on I²C (docs/wiring.md).
type EOL struct {
	// Preset names the band table ("galaxy", "texecom"); empty when Bands
	// gives the table.
	Preset string
	Scheme eol.Scheme
	// Bands is a table of its own, when there is no preset.
	Bands []eol.Range
	// The ADC: I²C bus ("1" for /dev/i2c-1), address and input 0 to 3.
	Bus     string
	Address int
	Channel int
	// PullUp is the divider's resistor to the supply (ohms); SupplyMV the
	// supply (millivolts).
	PullUp   int
	SupplyMV int
	// Hold is how long a band must hold to count.
	Hold time.Duration
}

// Table returns the loop's band table.
func (e *EOL) Table() eol.Table {
	if e.Preset != "" {
		t, err := eol.PresetTable(eol.Preset(e.Preset), e.Scheme)
		if err == nil {
			return t
		}
	}
	return eol.Table{Scheme: e.Scheme, Ranges: e.Bands}
}

// Name returns "GPIO17" or "gpiochip0:27", or for a loop "i2c-1:0x48:0".
func (l Line) Name() string {
	if l.EOL != nil {
		return fmt.Sprintf("i2c-%s:0x%02x:%d", l.EOL.Bus, l.EOL.Address, l.EOL.Channel)
	}
	if l.Pin != "" {
		return l.Pin
	}
	return fmt.Sprintf("%s:%d", l.Chip, l.Line)
}

// MQTT is the link to the broker.
type MQTT struct {
	Broker       string // tcp://, ssl:// or tls:// URL with host and port
	Base         string // topic prefix, e.g. "visitrooms"
	ClientID     string // defaults to "roomd-" + room
	Username     string
	PasswordFile string // file holding the password; the password is never in the config
	TLS          TLS

	Keepalive      time.Duration // whole seconds; Keepalive*1.5 <= 15s
	ConnectTimeout time.Duration
	Heartbeat      time.Duration // the state is republished this often
	MaxPayload     int           // bytes; larger incoming messages are refused
}

// TLS holds the TLS files. All empty: the system roots are used (for ssl:// and tls://).
type TLS struct {
	CAFile, CertFile, KeyFile, ServerName string
}

// Log configures roomd's logging.
type Log struct {
	Format LogFormat
	Level  slog.Level
}

// Byte size units.
const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// Default returns every default. Room, Policy.MaxDuration, MQTT.Broker and
// the GPIO lines have no default: a config must give them. Policy holds the
// defaults that apply to fields neither a preset nor the file sets.
func Default() Config {
	return Config{
		StateDir: "/var/lib/roomd",
		Policy:   defaultPolicy(),
		Device: Device{
			Backend:       BackendGPIO,
			RereadEvery:   5 * time.Second,
			Flap:          Flap{MaxChanges: 20, Window: 10 * time.Second},
			BlinkPeriod:   time.Second,
			FeedbackGrace: 100 * time.Millisecond,
		},
		MQTT: MQTT{
			Base:           "visitrooms",
			Keepalive:      5 * time.Second,
			ConnectTimeout: 10 * time.Second,
			Heartbeat:      30 * time.Second,
			MaxPayload:     4096,
		},
		HomeAssistant: HomeAssistant{DiscoveryPrefix: "homeassistant"},
		Commands:      Commands{Booking: true, Operators: []string{}, Readers: slices.Clone(DefaultReaders)},
		Journal:       Journal{MaxBytes: 64 * MiB, Retention: 24 * time.Hour},
		Log:           Log{Format: LogText, Level: slog.LevelInfo},
		Metrics:       Metrics{Every: 15 * time.Second},
	}
}

// defaultPolicy is the base every policy starts from; MaxDuration is left
// zero because there is no sensible default for it.
func defaultPolicy() controller.Policy {
	return controller.Policy{
		Name:            "custom",
		Extension:       controller.ExtensionUpToMax,
		Warnings:        []time.Duration{10 * time.Minute, 2 * time.Minute},
		EscalateAfter:   2 * time.Minute,
		RepeatEvery:     time.Minute,
		ReannounceAfter: 5 * time.Minute,
		LockScope:       controller.LockDuringVisit,
		LockGrace:       10 * time.Second,
		EndOnVacancy:    true,
		VacancyHold:     2 * time.Minute,
		VacateTimeout:   10 * time.Minute,
		PanicReset:      controller.PanicResetOnSite,
		// Call systems are inspected at least quarterly (DIN VDE 0834-1).
		FunctionTestEvery: 90 * 24 * time.Hour,
	}
}

// defaultLine is an input line's defaults.
func defaultLine() Line { return Line{Pull: PullUp, Debounce: 30 * time.Millisecond} }

// Load reads and parses the config file at path, and checks the files the
// config names the way roomd will open them (see Parse for the errors).
// path must name a regular file of at most MaxFileSize bytes; anything else
// is refused before a byte is read (a *NotRegularError or ErrTooLarge,
// wrapped). The files named by mqtt.password_file and mqtt.tls must exist
// and be regular files, and the secrets among them (the password file and
// the TLS key) must be private to their owner: each problem is another
// *FieldError.
func Load(path string) (*Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return parse(data, path, true)
}

// Parse parses a config. source names it in error messages (a file name;
// may be empty). On failure the error joins one *FieldError per problem
// (errors.Join; Unwrap() []error lists them), or is a single YAML syntax error.
// Parse touches no file: the files the config names are checked by Load.
func Parse(data []byte, source string) (*Config, error) {
	return parse(data, source, false)
}

func parse(data []byte, source string, checkFiles bool) (*Config, error) {
	r := &reader{source: source}
	cfg := Default()
	root, err := r.document(data)
	if err != nil {
		return nil, err
	}
	r.config(root, &cfg)
	if checkFiles {
		r.files(root, &cfg)
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// FieldError is one problem in a config: the field's path (e.g.
// "device.inputs.door.debounce") and the constraint it breaks.
type FieldError struct {
	Source     string // file name, may be empty
	Line       int    // 1-based line in Source; 0 if unknown
	Field      string
	Constraint string
}

func (e *FieldError) Error() string {
	prefix := ""
	switch {
	case e.Source != "" && e.Line > 0:
		prefix = fmt.Sprintf("%s:%d: ", e.Source, e.Line)
	case e.Source != "":
		prefix = e.Source + ": "
	case e.Line > 0:
		prefix = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Field == "" {
		return prefix + e.Constraint
	}
	return prefix + e.Field + ": " + e.Constraint
}
