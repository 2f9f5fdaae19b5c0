package board

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomd/roomd/metrics"
	"github.com/roomd/roomd/wallclock"
)

// The board's metrics (docs/metrics.md): its own link to the site broker,
// what it has not yet applied, the alerts it saw, the rooms' links as it
// sees them, and the site broker's bridge to the centre.
const (
	MetricBrokerConnected = "guardboard_broker_connected"
	MetricBrokerConnects  = "guardboard_broker_connections_total"
	MetricMailbox         = "guardboard_mailbox_length"
	MetricAlerts          = "guardboard_alerts_total"
	MetricRoomOnline      = "guardboard_room_online"
	MetricSiteLinkUp      = "guardboard_site_link_up"
	MetricSiteLinkChanges = "guardboard_site_link_changes_total"
	MetricResidentMemory  = "guardboard_process_resident_memory_bytes"
	MetricWrittenAt       = "guardboard_metrics_written_timestamp_seconds"
)

// MetricNames are the names of every metric the board exports.
var MetricNames = []string{MetricBrokerConnected, MetricBrokerConnects, MetricMailbox, MetricAlerts, MetricRoomOnline,
	MetricSiteLinkUp, MetricSiteLinkChanges, MetricResidentMemory, MetricWrittenAt}

// LinkTopic is where a site broker's bridge to its centre says whether it
// is up ("1") or down ("0"), per connection (site-bridge.conf's
// notifications).
const LinkTopic = "$SYS/broker/connection/+/state"

// boardMetrics is what the loop counts for the metrics.
type boardMetrics struct {
	mu        sync.Mutex
	connected bool
	connects  float64
	alerts    map[[2]string]float64 // room NUL kind, event
	rooms     map[string]bool       // room → online
	links     map[string]bool       // bridge connection → up
	changes   map[string]float64
}

func (m *boardMetrics) init() {
	m.alerts, m.rooms, m.links, m.changes = map[[2]string]float64{}, map[string]bool{}, map[string]bool{}, map[string]float64{}
}

func (m *boardMetrics) link(up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if up && !m.connected {
		m.connects++
	}
	m.connected = up
}

var alertEvents = map[string]string{"alert_raised": "raised", "alert_acked": "acknowledged", "alert_cleared": "cleared"}

func (m *boardMetrics) record(room, typ, kind string) {
	ev, ok := alertEvents[typ]
	if !ok || kind == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alerts[[2]string{room + "\x00" + kind, ev}]++
}

func (m *boardMetrics) room(id string, online bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rooms[id] = online
}

// bridge takes a message on LinkTopic.
func (m *boardMetrics) bridge(topic string, payload []byte) {
	parts := strings.Split(topic, "/")
	if len(parts) != 5 {
		return
	}
	name, up := parts[3], strings.TrimSpace(string(payload)) == "1"
	m.mu.Lock()
	defer m.mu.Unlock()
	if was, ok := m.links[name]; ok && was != up {
		m.changes[name]++
	} else if !ok {
		m.changes[name] += 0
	}
	m.links[name] = up
}

// Metrics returns a registry of the board's metrics, for a
// metrics.Textfile. memory reads the process's resident memory (nil:
// metrics.ResidentMemory).
func (b *Board) Metrics(memory func() (uint64, error)) *prometheus.Registry {
	if memory == nil {
		memory = metrics.ResidentMemory
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&boardCollector{b: b, memory: memory, descs: map[string]*prometheus.Desc{
		MetricBrokerConnected: prometheus.NewDesc(MetricBrokerConnected, "1 while the board's connection to the site broker is up.", nil, nil),
		MetricBrokerConnects:  prometheus.NewDesc(MetricBrokerConnects, "Connections the board made to the site broker; more than one is a reconnection.", nil, nil),
		MetricMailbox:         prometheus.NewDesc(MetricMailbox, "Messages received from the broker and not yet applied by the board's loop.", nil, nil),
		MetricAlerts:          prometheus.NewDesc(MetricAlerts, "Alert records the board received since it started, by room, kind and event (raised, acknowledged, cleared).", []string{"room", "kind", "event"}, nil),
		MetricRoomOnline:      prometheus.NewDesc(MetricRoomOnline, "1 while a room is online as the board sees it (availability online and states arriving), 0 when offline or stale.", []string{"room"}, nil),
		MetricSiteLinkUp:      prometheus.NewDesc(MetricSiteLinkUp, "1 while the site broker's bridge to the centre is up (its $SYS connection state).", []string{"connection"}, nil),
		MetricSiteLinkChanges: prometheus.NewDesc(MetricSiteLinkChanges, "Times the site broker's bridge to the centre went up or down since the board started.", []string{"connection"}, nil),
		MetricResidentMemory:  prometheus.NewDesc(MetricResidentMemory, "Resident memory of the guardboard process, in bytes.", nil, nil),
		MetricWrittenAt:       prometheus.NewDesc(MetricWrittenAt, "When these metrics were gathered (Unix seconds).", nil, nil),
	}})
	return reg
}

type boardCollector struct {
	b      *Board
	memory func() (uint64, error)
	descs  map[string]*prometheus.Desc
}

func (c *boardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *boardCollector) Collect(ch chan<- prometheus.Metric) {
	m := &c.b.metrics
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	b01 := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	c.b.box.mu.Lock()
	queued := len(c.b.box.items)
	c.b.box.mu.Unlock()
	gauge(MetricMailbox, float64(queued))

	m.mu.Lock()
	gauge(MetricBrokerConnected, b01(m.connected))
	counter(MetricBrokerConnects, m.connects)
	for k, v := range m.alerts {
		room, kind, _ := strings.Cut(k[0], "\x00")
		counter(MetricAlerts, v, room, kind, k[1])
	}
	for room, up := range m.rooms {
		gauge(MetricRoomOnline, b01(up), room)
	}
	for name, up := range m.links {
		gauge(MetricSiteLinkUp, b01(up), name)
		counter(MetricSiteLinkChanges, m.changes[name], name)
	}
	m.mu.Unlock()
	if rss, err := c.memory(); err == nil {
		gauge(MetricResidentMemory, float64(rss))
	}
	gauge(MetricWrittenAt, float64(wallclock.Now().UnixNano())/1e9)
}
