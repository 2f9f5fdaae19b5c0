package pager

import (
	"encoding/json"
	"fmt"
	"time"
)

// StatusVersion is the version of the status message.
const StatusVersion = 1

// StatusOffline is the state of the Last Will: the gateway itself is gone.
const StatusOffline = "offline"

// Status is the retained payload of {base}/_pagers/{gateway}/status: whether
// the site's handsets can be reached. A room id never starts with '_', so
// the topic never meets a room's.
type Status struct {
	Version int    `json:"version"`
	Gateway string `json:"gateway"`
	// State: ok (the paging system answers), paging_down (it does not:
	// the handsets are deaf), unknown (just started), offline (the
	// gateway is not running: its Last Will).
	State string `json:"state"`
	// Since is when the state began; absent in the Last Will.
	Since  string `json:"since,omitempty"`
	Detail string `json:"detail,omitempty"`
	Queued int    `json:"queued"`
}

// StatusTopic is the status topic of gateway under base.
func StatusTopic(base, gateway string) string { return base + "/_pagers/" + gateway + "/status" }

// StatusFilter matches every gateway's status under base.
func StatusFilter(base string) string { return base + "/_pagers/+/status" }

// EncodeStatus returns the status payload of gateway for s.
func EncodeStatus(gateway string, s LinkStatus) []byte {
	m := Status{Version: StatusVersion, Gateway: gateway, State: string(s.State), Detail: s.Detail, Queued: s.Queued}
	if !s.Since.IsZero() {
		m.Since = s.Since.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
	}
	b, _ := json.Marshal(m)
	return b
}

// EncodeWill returns the Last Will of gateway.
func EncodeWill(gateway string) []byte {
	b, _ := json.Marshal(Status{Version: StatusVersion, Gateway: gateway, State: StatusOffline})
	return b
}

// DecodeStatus reads a status payload.
func DecodeStatus(b []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("decode pager status: %w", err)
	}
	if s.Gateway == "" || s.State == "" {
		return Status{}, fmt.Errorf("decode pager status: gateway and state are required")
	}
	return s, nil
}

// Reachable says whether a status means the handsets can be paged.
func (s Status) Reachable() bool { return s.State == string(LinkUp) || s.State == string(LinkUnknown) }
