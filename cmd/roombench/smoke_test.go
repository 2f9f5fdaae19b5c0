package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/internal/siteworld"
	"github.com/roomd/roomd/internal/testtier"
)

// TestSmoke runs the short mode of every suite against a mosquitto the
// command starts itself: everything works and nothing is lost. The numbers
// are not checked. Without mosquitto it skips, or fails when CI=true.
func TestSmoke(t *testing.T) {
	testtier.Slow(t, "runs every suite for about a minute")
	testtier.Tool(t, "mosquitto", "mosquitto", mosquittoDirs...)
	testtier.Tool(t, "stunnel", "stunnel4", "/usr/bin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"--short", "--json", "all"}, &out, &errOut)
	t.Logf("stderr:\n%s", errOut.String())
	require.Equal(t, 0, code, "exit code; report:\n%s", out.String())

	var rep Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "report is JSON")
	assert.True(t, rep.Short)
	require.Len(t, rep.Suites, len(suiteNames))
	for i, s := range rep.Suites {
		assert.Equal(t, suiteNames[i], s.Suite)
		assert.Empty(t, s.Error, "suite %s", s.Suite)
		assert.Empty(t, s.Problems, "suite %s", s.Suite)
		assert.True(t, len(s.Rows)+len(s.Checks) > 0, "suite %s reports figures", s.Suite)
		for _, r := range s.Rows {
			assert.Positive(t, r.Sample.N, "suite %s row %q has samples", s.Suite, r.Metric)
		}
	}
}

// TestSmokeSitesNATS runs the short mode of the sites suite against the
// clustered centre (three nats-server nodes), failover included: it works
// and nothing is lost.
func TestSmokeSitesNATS(t *testing.T) {
	testtier.Slow(t, "runs the sites suite on three nats-server nodes for about half a minute")
	testtier.Tool(t, "mosquitto", "mosquitto", mosquittoDirs...)
	testtier.Tool(t, "stunnel", "stunnel4", "/usr/bin")
	siteworld.NeedNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"--short", "--json", "--centre", "nats", "sites"}, &out, &errOut)
	t.Logf("stderr:\n%s", errOut.String())
	require.Equal(t, 0, code, "exit code; report:\n%s", out.String())
	var rep Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "report is JSON")
	require.Len(t, rep.Suites, 1)
	s := rep.Suites[0]
	assert.Empty(t, s.Error)
	assert.Empty(t, s.Problems)
	var failover []string
	for _, c := range s.Checks {
		if strings.Contains(c.Name, "failover") {
			failover = append(failover, c.Name+": "+c.Value)
		}
	}
	assert.NotEmpty(t, failover, "the suite measured no failover")
	t.Log(strings.Join(failover, "\n"))
}

func TestParseFlags(t *testing.T) {
	var errOut bytes.Buffer
	cfg, names, err := parseFlags([]string{"--short", "latency", "outage"}, &errOut)
	require.NoError(t, err)
	assert.Equal(t, []string{"latency", "outage"}, names)
	assert.Equal(t, 20, cfg.Samples, "short mode shrinks the sample count")
	assert.Equal(t, []int{3, 6}, cfg.Rooms)
	assert.Equal(t, []int{2}, cfg.Sites, "short mode runs two sites")
	assert.Equal(t, 2, cfg.SiteRooms)

	cfg, _, err = parseFlags([]string{"--sites", "1, 3", "--site-rooms", "5", "--cut", "2s", "sites"}, &errOut)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 3}, cfg.Sites)
	assert.Equal(t, 5, cfg.SiteRooms)
	assert.Equal(t, 2*time.Second, cfg.Cut)
	cfg, _, err = parseFlags([]string{"--sites-autosave", "changes", "sites"}, &errOut)
	require.NoError(t, err)
	assert.Equal(t, time.Duration(autosaveOnChanges), cfg.SitesAutosave)

	assert.Equal(t, centreMosquitto, cfg.Centre, "the mosquitto centre by default")
	cfg, _, err = parseFlags([]string{"--centre", "nats", "sites"}, &errOut)
	require.NoError(t, err)
	assert.Equal(t, centreNATS, cfg.Centre)

	_, names, err = parseFlags([]string{"--samples", "7", "all"}, &errOut)
	require.NoError(t, err)
	assert.Equal(t, suiteNames, names)

	for _, bad := range [][]string{
		{},
		{"nosuch"},
		{"--rooms", "10,5", "fleet"},
		{"--rooms", "x", "fleet"},
		{"--samples", "0", "latency"},
		{"--autosave-every", "500ms", "fleet"},
		{"--sites", "0", "sites"},
		{"--sites", "27", "sites"},
		{"--site-rooms", "0", "sites"},
		{"--cut", "0s", "sites"},
		{"--wan-rtt", "-1ms", "sites"},
		{"--sites-autosave", "500ms", "sites"},
		{"--bridge-inflight", "-1", "sites"},
		{"--sites-autosave", "sometimes", "sites"},
		{"--centre", "emqx", "sites"},
		{"--centre", "nats", "--sites-autosave", "60s", "sites"},
	} {
		_, _, err := parseFlags(bad, &errOut)
		assert.Error(t, err, "args %q", bad)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	assert.Equal(t, 100, s.N)
	assert.Equal(t, 1.0, s.Min)
	assert.Equal(t, 50.0, s.P50)
	assert.Equal(t, 90.0, s.P90)
	assert.Equal(t, 99.0, s.P99)
	assert.Equal(t, 100.0, s.Max)
	assert.Equal(t, 50.5, s.Mean)
	assert.Equal(t, Summary{}, summarize(nil))
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, s.RSSKiB)
	assert.Positive(t, s.Threads)
	assert.Positive(t, s.FDs)
}
