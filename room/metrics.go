package room

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/journal"
	"github.com/roomd/roomd/metrics"
	"github.com/roomd/roomd/wallclock"
)

// The room's metrics (docs/metrics.md lists them, with what each tells an
// operations team). Every series carries the room's id as label "room".
const (
	MetricSyncSeconds      = "roomd_journal_sync_duration_seconds"
	MetricJournalBytes     = "roomd_journal_bytes"
	MetricJournalMaxBytes  = "roomd_journal_max_bytes"
	MetricUnackedEntries   = "roomd_journal_unacked_entries"
	MetricUnackedBytes     = "roomd_journal_unacked_bytes"
	MetricJournalDegraded  = "roomd_journal_degraded"
	MetricPublisherQueue   = "roomd_publisher_queued_messages"
	MetricCommandQueue     = "roomd_command_queue_length"
	MetricFaultQueue       = "roomd_fault_queue_length"
	MetricBrokerConnected  = "roomd_broker_connected"
	MetricBrokerConnects   = "roomd_broker_connections_total"
	MetricClockSynced      = "roomd_clock_synced"
	MetricStateAge         = "roomd_state_published_age_seconds"
	MetricAlerts           = "roomd_alerts_total"
	MetricResidentMemory   = "roomd_process_resident_memory_bytes"
	MetricHeldForPrivacy   = "roomd_metrics_held_for_privacy"
	MetricMetricsWrittenAt = "roomd_metrics_written_timestamp_seconds"
)

// MetricNames are the names of every metric a room exports.
var MetricNames = []string{MetricSyncSeconds, MetricJournalBytes, MetricJournalMaxBytes, MetricUnackedEntries, MetricUnackedBytes,
	MetricJournalDegraded, MetricPublisherQueue, MetricCommandQueue, MetricFaultQueue, MetricBrokerConnected,
	MetricBrokerConnects, MetricClockSynced, MetricStateAge, MetricAlerts, MetricResidentMemory,
	MetricHeldForPrivacy, MetricMetricsWrittenAt}

// MetricsOptions tune the room's metrics.
type MetricsOptions struct {
	// Memory reads the process's resident memory; nil means
	// metrics.ResidentMemory.
	Memory func() (uint64, error)
}

// roomMetrics reads the room's state at every gathering. It holds what
// could move with presence while the controller's privacy applies (a
// visit, and its inspection), exporting the values it had before:
//   - the journal's bytes (on disk and unacknowledged): a step's snapshot
//     carries every input's level, presence included, so the size of an
//     entry written during a visit depends on where presence stands;
//   - the journal's sync latencies, which grow with the bytes synced;
//   - the process's memory, which every input reading the loop handles
//     changes a little.
//
// Everything else moves only with what the room publishes anyway (records,
// states, replies, the broker connection), with the count of journal
// entries (no step of a visit is journaled for a presence change: the
// controller's privacy rule), or with nothing of the room at all.
type roomMetrics struct {
	r      *Room
	memory func() (uint64, error)

	descs map[string]*prometheus.Desc

	mu         sync.Mutex
	next       uint64 // next journal entry to count alerts in
	alerts     map[alertKey]float64
	maxConnect uint64
	held       bool
	// What is held while the privacy applies: the last values read
	// outside it.
	memBytes, journalBytes, unackedBytes float64
	syncs                                prometheus.Metric
}

type alertKey struct{ kind, event string }

// alertEvents are the alert records counted, by the label they get.
var alertEvents = map[controller.EventType]string{
	controller.EventAlertRaised: "raised", controller.EventAlertAcked: "acknowledged", controller.EventAlertCleared: "cleared",
}

// Metrics returns a registry of the room's metrics, every series labelled
// with the room's id, for a metrics.Textfile; it counts alerts from the
// journal's next entry on.
func (r *Room) Metrics(o MetricsOptions) *prometheus.Registry {
	if o.Memory == nil {
		o.Memory = metrics.ResidentMemory
	}
	m := &roomMetrics{r: r, memory: o.Memory, next: r.j.Last() + 1, alerts: map[alertKey]float64{}, descs: map[string]*prometheus.Desc{}}
	constant := prometheus.Labels{"room": r.cfg.Room}
	help := map[string]string{
		MetricJournalBytes:     "Bytes of the journal's files on disk; held at its value before a visit while the visit's privacy applies.",
		MetricJournalMaxBytes:  "The journal's bound on disk (journal.max_bytes): above it, delivered entries are deleted, and undelivered ones raise system_fault.",
		MetricUnackedEntries:   "Journal entries the broker has not acknowledged yet (the outbox).",
		MetricUnackedBytes:     "Bytes of the journal entries the broker has not acknowledged yet; held at its value before a visit while the visit's privacy applies.",
		MetricJournalDegraded:  "1 while the journal cannot write to its disk (the loop keeps the steps in memory and raises system_fault).",
		MetricPublisherQueue:   "Messages outside the journal (replies, states, retained topics, replays) waiting to be published.",
		MetricCommandQueue:     "Commands received and not yet taken by the room's loop.",
		MetricFaultQueue:       "Faults of the link not yet taken by the room's loop.",
		MetricBrokerConnected:  "1 while the connection to the broker is up.",
		MetricBrokerConnects:   "Connections made to the broker since the start; more than one is a reconnection.",
		MetricClockSynced:      "1 while the system clock is synchronised (NTP).",
		MetricStateAge:         "Seconds since the room last handed its state to the broker (every heartbeat, 30 s by default); -1 before the first.",
		MetricResidentMemory:   "Resident memory of the roomd process, in bytes; held at its value before a visit while the visit's privacy applies.",
		MetricHeldForPrivacy:   "1 while the metrics that could move with presence are held (a visit, or its inspection, runs).",
		MetricMetricsWrittenAt: "When these metrics were gathered (Unix seconds).",
	}
	for name, h := range help {
		m.descs[name] = prometheus.NewDesc(name, h, nil, constant)
	}
	m.descs[MetricSyncSeconds] = prometheus.NewDesc(MetricSyncSeconds,
		"Time the journal's disk took to make what was written durable (one fdatasync, the journal's own measurement); held at its value before a visit while the visit's privacy applies.",
		nil, constant)
	m.descs[MetricAlerts] = prometheus.NewDesc(MetricAlerts, "Alert records of the room since roomd started, by kind and event (raised, acknowledged, cleared).",
		[]string{"kind", "event"}, constant)
	m.sample() // a visit may run already
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	return reg
}

// Describe implements prometheus.Collector.
func (m *roomMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// sample reads what is held while the privacy applies.
func (m *roomMetrics) sample() {
	if rss, err := m.memory(); err == nil {
		m.memBytes = float64(rss)
	}
	m.journalBytes = float64(m.r.j.Size())
	_, unacked := m.r.j.Unacked()
	m.unackedBytes = float64(unacked)
	sum := m.r.j.SyncStats().Summary()
	buckets := make(map[float64]uint64, len(journal.SyncBuckets))
	for i, upper := range journal.SyncBuckets {
		buckets[upper.Seconds()] = sum.Buckets[i]
	}
	m.syncs = prometheus.MustNewConstHistogram(m.descs[MetricSyncSeconds], sum.Count, sum.Sum.Seconds(), buckets)
}

// Collect implements prometheus.Collector.
func (m *roomMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.r
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.GaugeValue, v)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}

	// What could move with presence is held while the privacy applies.
	snap, _ := r.j.Latest()
	m.held = snap != nil && snap.Phase.Private()
	if !m.held {
		m.sample()
	}
	gauge(MetricResidentMemory, m.memBytes)
	gauge(MetricJournalBytes, m.journalBytes)
	gauge(MetricJournalMaxBytes, float64(r.cfg.Journal.MaxBytes))
	gauge(MetricUnackedBytes, m.unackedBytes)
	ch <- m.syncs
	gauge(MetricHeldForPrivacy, b(m.held))

	entries, _ := r.j.Unacked()
	gauge(MetricUnackedEntries, float64(entries))
	gauge(MetricJournalDegraded, b(r.j.Degraded() != nil))
	gauge(MetricCommandQueue, float64(len(r.cmds)))
	gauge(MetricFaultQueue, float64(len(r.faults)))

	queued, connected, stateAge := 0.0, false, -1.0
	if r.pub != nil {
		queued = float64(r.pub.Queued())
		if at := r.pub.StateSent(); !at.IsZero() {
			stateAge = r.axis.Now().Sub(at).Seconds()
		}
	}
	if r.client != nil {
		connected = r.client.Connected()
		if n, _, _, _ := r.client.Conn(); n > m.maxConnect {
			m.maxConnect = n
		}
	}
	gauge(MetricPublisherQueue, queued)
	gauge(MetricBrokerConnected, b(connected))
	ch <- prometheus.MustNewConstMetric(m.descs[MetricBrokerConnects], prometheus.CounterValue, float64(m.maxConnect))
	gauge(MetricStateAge, stateAge)
	gauge(MetricClockSynced, b(m.synced()))

	m.countAlerts()
	for k, v := range m.alerts {
		ch <- prometheus.MustNewConstMetric(m.descs[MetricAlerts], prometheus.CounterValue, v, k.kind, k.event)
	}
	gauge(MetricMetricsWrittenAt, float64(wallclock.Now().UnixNano())/1e9)
}

// synced reports the clock's synchronisation as the room's info does.
func (m *roomMetrics) synced() bool {
	clock := m.r.o.Clock
	if clock == nil {
		return systemSynced()
	}
	return clock.Synced()
}

// countAlerts counts the alert records of the entries appended since the
// last gathering.
func (m *roomMetrics) countAlerts() {
	j := m.r.j
	last := j.Last()
	if first := j.First(); m.next < first {
		m.next = first // compacted meanwhile: those are gone
	}
	for ; m.next <= last; m.next++ {
		e, err := j.Get(m.next)
		if err != nil {
			continue
		}
		for _, rec := range e.Records {
			ev, ok := alertEvents[rec.Type]
			if !ok || rec.Alert == nil {
				continue
			}
			m.alerts[alertKey{kind: rec.Alert.Kind.String(), event: ev}]++
		}
	}
}

// systemSynced is the system clock's synchronisation, as the room's info
// reads it when no clock was given.
func systemSynced() bool { return daemon.SystemClock{}.Synced() }
