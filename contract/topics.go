package contract

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultBase is the topic base used when none is configured.
const DefaultBase = "visitrooms"

// ContractVersion is the version of the MQTT contract (docs/asyncapi.yaml).
// It is carried in every state message and changes only when a consumer
// relying on the documented contract would break.
const ContractVersion = 2

// DefaultHeartbeat is how often a room publishes its state when nothing
// changes (info.heartbeat_s says the room's own, and consumers assume this
// one until they have read it).
const DefaultHeartbeat = 30 * time.Second

// MaxReplay bounds the records one replay command republishes.
const MaxReplay = 1000

// ReservedIDs are the site's other MQTT identities (configs/mosquitto/acl)
// and the controller's on_site: a room is its own broker username, so a
// room by one of these names would take that identity's rights.
var ReservedIDs = []string{"booking", "guard-station", "sim-driver", "decommission", "homeassistant", "on_site"}

// ValidRoom reports whether room is a usable room id: 1 to 64 characters,
// the first a lowercase letter or digit, the rest lowercase letters, digits,
// '_' or '-' (the pattern [a-z0-9][a-z0-9_-]{0,63}), and none of
// ReservedIDs. A room id is also the room's MQTT username, so it never
// contains '/', '+' or '#'.
func ValidRoom(room string) bool {
	if len(room) == 0 || len(room) > 64 || slices.Contains(ReservedIDs, room) {
		return false
	}
	for i := 0; i < len(room); i++ {
		c := room[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidateBase returns an error naming what is wrong with a topic base: it
// must be non-empty, at most 128 bytes, without leading or trailing '/',
// empty levels, wildcards ('+', '#'), NUL or a leading '$'.
func ValidateBase(base string) error {
	switch {
	case base == "":
		return errors.New("topic base is empty")
	case len(base) > 128:
		return fmt.Errorf("topic base %q is longer than 128 bytes", base)
	case strings.HasPrefix(base, "/") || strings.HasSuffix(base, "/") || strings.Contains(base, "//"):
		return fmt.Errorf("topic base %q has an empty level (leading, trailing or double '/')", base)
	case strings.ContainsAny(base, "+#\x00"):
		return fmt.Errorf("topic base %q contains a wildcard or NUL", base)
	case strings.HasPrefix(base, "$"):
		return fmt.Errorf("topic base %q starts with '$' (reserved for the broker)", base)
	}
	return nil
}

// Topics names the topics of one room: {Base}/{Room}/... . Build it with
// NewTopics to have both parts checked.
type Topics struct {
	Base string
	Room string
}

// NewTopics returns the topics of room under base; an empty base means
// DefaultBase.
func NewTopics(base, room string) (Topics, error) {
	if base == "" {
		base = DefaultBase
	}
	if err := ValidateBase(base); err != nil {
		return Topics{}, err
	}
	if !ValidRoom(room) {
		return Topics{}, fmt.Errorf("room id %q: want 1 to 64 characters of [a-z0-9_-], starting with a letter or digit", room)
	}
	return Topics{Base: base, Room: room}, nil
}

func (t Topics) topic(suffix string) string { return t.Base + "/" + t.Room + "/" + suffix }

// Availability is the retained online/offline flag (and Last Will).
func (t Topics) Availability() string { return t.topic("availability") }

// Info is the retained description of the room: versions, policy, roles.
func (t Topics) Info() string { return t.topic("info") }

// State is the retained state snapshot.
func (t Topics) State() string { return t.topic("state") }

// Events carries every announced record, QoS 1.
func (t Topics) Events() string { return t.topic("events") }

// Alerts carries the alert-lifecycle records, QoS 1.
func (t Topics) Alerts() string { return t.topic("alerts") }

// Command is where commands of the one anonymous booking identity arrive.
func (t Topics) Command() string { return t.topic("cmd") }

// OperatorCommand is where operator op sends commands; the broker's ACL
// (pattern write {base}/+/cmd/%u) vouches that op is who sent them.
func (t Topics) OperatorCommand(op string) string { return t.topic("cmd/" + op) }

// OperatorCommands is the filter for every operator's commands.
func (t Topics) OperatorCommands() string { return t.topic("cmd/+") }

// Reply carries the answers to commands, QoS 1.
func (t Topics) Reply() string { return t.topic("reply") }

// SimSet is where simulated inputs arrive (simulator mode only).
func (t Topics) SimSet() string { return t.topic("sim/set") }

// SimOutputs is the retained simulated outputs (simulator mode only).
func (t Topics) SimOutputs() string { return t.topic("sim/outputs") }
