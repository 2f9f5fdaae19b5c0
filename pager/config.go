package pager

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/pager/espa"
)

// Config is roompager's config file (/etc/roompager/roompager.yaml).
type Config struct {
	// Gateway names this roompager on the status topic
	// ({base}/_pagers/{gateway}/status).
	Gateway  string       `yaml:"gateway"`
	Language Language     `yaml:"language"`
	MQTT     MQTTConfig   `yaml:"mqtt"`
	Serial   SerialConfig `yaml:"serial"`
	ESPA     ESPAConfig   `yaml:"espa"`
	Messages struct {
		// MaxLength: the longest message, what the handsets show at once.
		MaxLength int  `yaml:"max_length"`
		Notices   bool `yaml:"notices"`
	} `yaml:"messages"`
	// RepeatGrace: how long after a room's repeat_every the pager repeats
	// an unacknowledged critical alert itself when no alert_repeated came.
	RepeatGrace Duration      `yaml:"repeat_grace"`
	Routes      []RouteConfig `yaml:"routes"`
	Log         struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
}

// MQTTConfig is the broker and roompager's identity on it.
type MQTTConfig struct {
	Broker       string   `yaml:"broker"`
	Base         string   `yaml:"base"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	CAFile       string   `yaml:"ca_file"`
	Keepalive    Duration `yaml:"keepalive"`
}

// SerialConfig is the serial port and its line settings.
type SerialConfig struct {
	Device      string `yaml:"device"`
	espa.Serial `yaml:",inline"`
}

// ESPAConfig is the ESPA 4.4.4 link.
type ESPAConfig struct {
	OwnAddress    string   `yaml:"own_address"`
	PagingAddress string   `yaml:"paging_address"`
	PollEvery     Duration `yaml:"poll_every"`
	ReplyTimeout  Duration `yaml:"reply_timeout"`
	Tries         int      `yaml:"tries"`
	DeadAfter     int      `yaml:"dead_after"`
}

// RouteConfig is one route: which alerts page which call addresses.
type RouteConfig struct {
	Addresses   []string `yaml:"addresses"`
	Rooms       []string `yaml:"rooms,omitempty"`
	Kinds       []string `yaml:"kinds,omitempty"`
	MinSeverity string   `yaml:"min_severity"`
}

// Duration is a Go duration in YAML ("90s").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (90s, 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Kinds are the alert kinds of the contract.
var Kinds = []string{"time_up", "door_locked", "panic", "sensor_fault", "not_vacated", "welfare_check",
	"system_fault", "output_fault", "function_test_due", "line_drift"}

// ValidID reports whether s is a gateway or room id: the rules of
// contract.ValidRoom, reserved identities excluded, so that a gateway the
// pager accepts is one the board shows.
func ValidID(s string) bool { return contract.ValidRoom(s) }

// Default returns the config with every default filled in.
func Default() Config {
	var c Config
	c.Language = English
	c.MQTT.Base = "visitrooms"
	c.MQTT.Username = "roompager"
	c.MQTT.Keepalive = Duration(5 * time.Second)
	c.Serial.Serial = espa.DefaultSerial
	c.ESPA = ESPAConfig{OwnAddress: "1", PagingAddress: "2", PollEvery: Duration(2 * time.Second),
		ReplyTimeout: Duration(espa.DefaultReplyTimeout), Tries: espa.DefaultTries, DeadAfter: 3}
	c.Messages.MaxLength = 40
	c.Messages.Notices = true
	c.RepeatGrace = Duration(30 * time.Second)
	c.Log.Format, c.Log.Level = "text", "info"
	return c
}

// Problems is every problem of a config, each naming its field.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// ParseConfig reads a config; unset keys take their defaults. The error
// is Problems when the file was read but is wrong.
func ParseConfig(b []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return c, Problems(te.Errors)
		}
		return c, Problems{err.Error()}
	}
	for i := range c.Routes {
		if c.Routes[i].MinSeverity == "" {
			c.Routes[i].MinSeverity = "warning"
		}
	}
	if p := c.Validate(); len(p) > 0 {
		return c, p
	}
	return c, nil
}

// Validate returns every problem, each naming its field.
func (c Config) Validate() Problems {
	var p Problems
	bad := func(field, format string, a ...any) { p = append(p, field+": "+fmt.Sprintf(format, a...)) }
	if !ValidID(c.Gateway) {
		bad("gateway", "%q: want 1 to 64 of [a-z0-9_-], starting with a letter or digit, and none of %v (required)", c.Gateway, contract.ReservedIDs)
	}
	if !slices.Contains(Languages, c.Language) {
		bad("language", "%q: want one of %v", c.Language, Languages)
	}
	if c.MQTT.Broker == "" {
		bad("mqtt.broker", "required (tcp://host:1883, tls://host:8883)")
	} else if !slices.ContainsFunc([]string{"tcp://", "ssl://", "tls://", "mqtts://"}, func(s string) bool { return strings.HasPrefix(c.MQTT.Broker, s) }) {
		bad("mqtt.broker", "%q: want tcp://, ssl://, tls:// or mqtts://", c.MQTT.Broker)
	}
	if c.MQTT.Base == "" || strings.ContainsAny(c.MQTT.Base, "+#") || strings.HasPrefix(c.MQTT.Base, "/") || strings.HasSuffix(c.MQTT.Base, "/") {
		bad("mqtt.base", "%q: want a topic prefix without wildcards or outer '/'", c.MQTT.Base)
	}
	if c.MQTT.Username == "" {
		bad("mqtt.username", "required")
	}
	if k := time.Duration(c.MQTT.Keepalive); k < time.Second || k > 60*time.Second {
		bad("mqtt.keepalive", "%v: want 1s to 60s", k)
	}
	if c.Serial.Device == "" {
		bad("serial.device", "required (/dev/ttyUSB0, or its /dev/serial/by-id/ name)")
	}
	if err := c.Serial.Serial.Validate(); err != nil {
		bad("serial", "%v", err)
	}
	digit := func(s string) bool { return len(s) == 1 && s[0] >= '0' && s[0] <= '9' }
	if !digit(c.ESPA.OwnAddress) {
		bad("espa.own_address", "%q: want one digit", c.ESPA.OwnAddress)
	}
	if !digit(c.ESPA.PagingAddress) || c.ESPA.PagingAddress == c.ESPA.OwnAddress {
		bad("espa.paging_address", "%q: want one digit other than own_address", c.ESPA.PagingAddress)
	}
	if d := time.Duration(c.ESPA.PollEvery); d < 100*time.Millisecond || d > time.Minute {
		bad("espa.poll_every", "%v: want 100ms to 1m", d)
	}
	if d := time.Duration(c.ESPA.ReplyTimeout); d < 50*time.Millisecond || d > 30*time.Second {
		bad("espa.reply_timeout", "%v: want 50ms to 30s", d)
	}
	if c.ESPA.Tries < 1 || c.ESPA.Tries > 10 {
		bad("espa.tries", "%d: want 1 to 10", c.ESPA.Tries)
	}
	if c.ESPA.DeadAfter < 1 || c.ESPA.DeadAfter > 100 {
		bad("espa.dead_after", "%d: want 1 to 100", c.ESPA.DeadAfter)
	}
	if c.Messages.MaxLength < 16 || c.Messages.MaxLength > espa.MaxMessage {
		bad("messages.max_length", "%d: want 16 to %d", c.Messages.MaxLength, espa.MaxMessage)
	}
	if d := time.Duration(c.RepeatGrace); d < 0 || d > time.Hour {
		bad("repeat_grace", "%v: want 0s to 1h", d)
	}
	if len(c.Routes) == 0 {
		bad("routes", "at least one route is required: nothing would be paged")
	}
	for i, r := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		if len(r.Addresses) == 0 {
			bad(f+".addresses", "at least one call address is required")
		}
		for j, a := range r.Addresses {
			if err := (espa.Call{Address: a, Priority: espa.PriorityNormal}).Validate(); err != nil {
				bad(fmt.Sprintf("%s.addresses[%d]", f, j), "%v", err)
			}
		}
		for j, room := range r.Rooms {
			if !ValidID(room) {
				bad(fmt.Sprintf("%s.rooms[%d]", f, j), "%q is not a room id (1 to 64 of [a-z0-9_-], starting with a letter or digit, and none of %v)", room, contract.ReservedIDs)
			}
		}
		for j, k := range r.Kinds {
			if !slices.Contains(Kinds, k) {
				bad(fmt.Sprintf("%s.kinds[%d]", f, j), "%q: want one of %v", k, Kinds)
			}
		}
		if _, err := ParseSeverity(r.MinSeverity); err != nil {
			bad(f+".min_severity", "%v", err)
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q: want text or json", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	return p
}

// Rules returns the pager's rules from a valid config.
func (c Config) Rules() Rules {
	r := Rules{Language: c.Language, MaxMessage: c.Messages.MaxLength, Notices: c.Messages.Notices,
		RepeatGrace: time.Duration(c.RepeatGrace)}
	for _, rc := range c.Routes {
		sev, _ := ParseSeverity(rc.MinSeverity)
		r.Routes = append(r.Routes, Route{Rooms: rc.Rooms, Kinds: rc.Kinds, MinSeverity: sev, Addresses: rc.Addresses})
	}
	return r
}

// Station returns the ESPA station's config from a valid config.
func (c Config) Station() espa.Config {
	return espa.Config{Own: c.ESPA.OwnAddress[0], Peer: c.ESPA.PagingAddress[0],
		ReplyTimeout: time.Duration(c.ESPA.ReplyTimeout), Tries: c.ESPA.Tries}
}
