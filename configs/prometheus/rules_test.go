package prometheus_test

// The alert rules (roomd-rules.yml) and the Grafana dashboard
// (configs/grafana/roomd-dashboard.json) are checked here: promtool checks
// and unit-tests the rules, and every roomd_ or guardboard_ metric either
// names must be one that roomd or the board exports.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/board"
	"github.com/roomd/roomd/internal/testtier"
	"github.com/roomd/roomd/room"
)

// exported are the names of every series roomd and the board export
// (a histogram's as Prometheus stores it).
func exported() map[string]bool {
	out := map[string]bool{}
	for _, n := range slices.Concat(room.MetricNames, board.MetricNames) {
		out[n] = true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		out[room.MetricSyncSeconds+suffix] = true
	}
	delete(out, room.MetricSyncSeconds) // only its series are queried
	return out
}

var ours = regexp.MustCompile(`\b(?:roomd|guardboard)_[a-z_]+\b`)

// named returns the roomd_ and guardboard_ metric names in a PromQL
// expression.
func named(expr string) []string { return ours.FindAllString(expr, -1) }

func TestRulesPassPromtool(t *testing.T) {
	promtool := testtier.Tool(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "roomd-rules.yml"}, {"test", "rules", "roomd-rules.test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		assert.Contains(t, string(out), "SUCCESS", "promtool %s", strings.Join(args, " "))
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestRulesNameOnlyExportedMetrics: a rule on a metric nobody exports
// would never fire. Every rule has a severity, and the rules cover what an
// operations team must hear of: a room offline, sync latency, disk, clock,
// queue growth.
func TestRulesNameOnlyExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("roomd-rules.yml")
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(data, &rf))
	require.NotEmpty(t, rf.Groups)
	have, alerts := exported(), map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "group %s: a rule without a name", g.Name)
			alerts[r.Alert] = r.Expr
			assert.Contains(t, []string{"page", "ticket"}, r.Labels["severity"], "%s: severity", r.Alert)
			for _, m := range named(r.Expr) {
				assert.True(t, have[m], "%s names %s, which nothing exports", r.Alert, m)
			}
		}
	}
	for alert, metric := range map[string]string{
		"RoomOffline": "guardboard_room_online", "RoomdJournalSyncSlow": "roomd_journal_sync_duration_seconds_bucket",
		"RoomDiskFilling": "node_filesystem_avail_bytes", "RoomdJournalNearlyFull": "roomd_journal_bytes",
		"RoomdClockNotSynced": "roomd_clock_synced", "RoomdOutboxGrowing": "roomd_journal_unacked_entries",
		"RoomdQueueBacklog": "roomd_publisher_queued_messages", "SiteLinkDown": "guardboard_site_link_up",
	} {
		require.Contains(t, alerts, alert)
		assert.Contains(t, alerts[alert], metric, "%s", alert)
	}
}

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboardShowsExportedMetrics: the dashboard parses, every panel
// queries something, every metric it names is exported, and every metric
// exported is on it.
func TestDashboardShowsExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "grafana", "roomd-dashboard.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(data, &d), "the dashboard is JSON")
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)
	require.NotEmpty(t, d.Panels)
	have, shown := exported(), map[string]bool{}
	ids := map[int]bool{}
	check := func(where, expr string) {
		for _, m := range named(expr) {
			assert.True(t, have[m], "%s names %s, which nothing exports", where, m)
			shown[m] = true
		}
	}
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		require.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q: a target without a query", p.Title)
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		check("variable "+v.Name, v.Definition)
	}
	for m := range have {
		if strings.HasSuffix(m, "_sum") || strings.HasSuffix(m, "_count") {
			continue // the histogram is shown by its buckets
		}
		assert.True(t, shown[m], "%s is exported but not on the dashboard", m)
	}
}
