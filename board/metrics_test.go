package board

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/contract"
	"github.com/roomd/roomd/roomclient"
)

func gatherText(t *testing.T, b *Board) string {
	t.Helper()
	mfs, err := b.Metrics(func() (uint64, error) { return 42 << 20, nil }).Gather()
	require.NoError(t, err)
	var out bytes.Buffer
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&out, mf)
		require.NoError(t, err)
	}
	return out.String()
}

// TestBoardMetrics: what the loop applies shows in the metrics: the link to
// the broker and its reconnections, the alerts by room, kind and event
// (a record that came by replay counted too), the site's bridge.
func TestBoardMetrics(t *testing.T) {
	b := New(Options{Broker: "tcp://127.0.0.1:1"})
	up, down := true, false
	rec := func(seq uint64, typ, kind string, v roomclient.Verdict) item {
		return item{rec: &roomclient.Record{Room: "room-1", Verdict: v, EventMessage: contract.EventMessage{
			Room: "room-1", Epoch: "e", Seq: seq, Type: typ, Alert: &contract.AlertMessage{ID: kind + "-1", Kind: kind, Severity: "critical"}}}}
	}
	for _, it := range []item{{link: &up}, rec(1, "alert_raised", "panic", roomclient.New), rec(5, "alert_raised", "panic", roomclient.Filled),
		rec(2, "alert_acked", "panic", roomclient.New), {link: &down}, {link: &up}, rec(3, "alert_cleared", "panic", roomclient.New)} {
		b.step(it)
	}
	b.metrics.bridge("$SYS/broker/connection/central/state", []byte("1"))
	b.metrics.bridge("$SYS/broker/connection/central/state", []byte("0"))
	got := gatherText(t, b)
	for _, want := range []string{
		"guardboard_broker_connected 1", "guardboard_broker_connections_total 2",
		`guardboard_alerts_total{event="raised",kind="panic",room="room-1"} 2`,
		`guardboard_alerts_total{event="acknowledged",kind="panic",room="room-1"} 1`,
		`guardboard_alerts_total{event="cleared",kind="panic",room="room-1"} 1`,
		`guardboard_site_link_up{connection="central"} 0`, `guardboard_site_link_changes_total{connection="central"} 1`,
		"guardboard_process_resident_memory_bytes 4.4040192e+07", "guardboard_mailbox_length 0",
	} {
		assert.Contains(t, got, want+"\n")
	}
}
