package configs

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/roomd/roomd/controller"
)

// The shapes YAML writes; field order is the order of the example config.
type (
	yamlConfig struct {
		Room     string      `yaml:"room"`
		StateDir string      `yaml:"state_dir"`
		Policy   yamlPolicy  `yaml:"policy"`
		Device   yamlDevice  `yaml:"device"`
		MQTT     yamlMQTT    `yaml:"mqtt"`
		HA       yamlHA      `yaml:"homeassistant,flow"`
		Commands yamlCmds    `yaml:"commands"`
		Journal  yamlJournal `yaml:"journal,flow"`
		Log      yamlLog     `yaml:"log"`
	}
	yamlPolicy struct {
		Preset               string   `yaml:"preset,omitempty"`
		MaxDuration          string   `yaml:"max_duration"`
		Extension            string   `yaml:"extension"`
		Warnings             []string `yaml:"warnings,flow"`
		EscalateAfter        string   `yaml:"escalate_after"`
		RepeatEvery          string   `yaml:"repeat_every"`
		ReannounceAfter      string   `yaml:"reannounce_after"`
		LockScope            string   `yaml:"lock_scope"`
		LockGrace            string   `yaml:"lock_grace"`
		EndOnVacancy         bool     `yaml:"end_on_vacancy"`
		VacancyHold          string   `yaml:"vacancy_hold"`
		VacateTimeout        string   `yaml:"vacate_timeout"`
		WelfareCheckEvery    string   `yaml:"welfare_check_every"`
		PanicReset           string   `yaml:"panic_reset"`
		InspectionAfterVisit bool     `yaml:"inspection_after_visit"`
		FunctionTestEvery    string   `yaml:"function_test_every"`
	}
	yamlDevice struct {
		Backend       string      `yaml:"backend"`
		RereadEvery   string      `yaml:"reread_every"`
		Flap          yamlFlap    `yaml:"flap,flow"`
		BlinkPeriod   string      `yaml:"blink_period"`
		FeedbackGrace string      `yaml:"feedback_grace"`
		Inputs        yamlInputs  `yaml:"inputs"`
		Outputs       yamlOutputs `yaml:"outputs"`
		Power         *yamlPower  `yaml:"power,omitempty"`
		Healthy       *yamlOutput `yaml:"healthy,omitempty,flow"`
	}
	yamlPower struct {
		MainsFail  *yamlFeedback `yaml:"mains_fail,omitempty,flow"`
		BatteryLow *yamlFeedback `yaml:"battery_low,omitempty,flow"`
	}
	yamlEOL struct {
		Preset   string     `yaml:"preset,omitempty"`
		Scheme   string     `yaml:"scheme"`
		Bands    []yamlBand `yaml:"bands,omitempty,flow"`
		ADC      yamlADC    `yaml:"adc,flow"`
		PullUp   int        `yaml:"pull_up"`
		SupplyMV int        `yaml:"supply_mv"`
		Hold     string     `yaml:"hold"`
	}
	yamlADC struct {
		Bus     string `yaml:"bus"`
		Address int    `yaml:"address"`
		Channel int    `yaml:"channel"`
	}
	yamlBand struct {
		Band string `yaml:"band"`
		From int64  `yaml:"from"`
		To   *int64 `yaml:"to,omitempty"`
	}
	yamlFlap struct {
		MaxChanges int    `yaml:"max_changes"`
		Window     string `yaml:"window"`
	}
	yamlInputs struct {
		Door     *yamlInput  `yaml:"door,omitempty,flow"`
		Lock     *yamlInput  `yaml:"lock,omitempty,flow"`
		Presence []yamlInput `yaml:"presence,flow"`
		Panic    yamlPanic   `yaml:"panic,omitempty"`
		Staff    *yamlInput  `yaml:"staff,omitempty,flow"`
	}
	yamlInput struct {
		Name      string   `yaml:"name,omitempty"`
		Pin       string   `yaml:"pin,omitempty"`
		Chip      string   `yaml:"chip,omitempty"`
		Line      *int     `yaml:"line,omitempty"`
		Pull      string   `yaml:"pull,omitempty"`
		ActiveLow *bool    `yaml:"active_low,omitempty"`
		Debounce  string   `yaml:"debounce,omitempty"`
		EOL       *yamlEOL `yaml:"eol,omitempty,flow"`
	}
	yamlOutputs struct {
		InUse        *yamlOutput `yaml:"in_use,omitempty,flow"`
		Warning      *yamlOutput `yaml:"warning,omitempty,flow"`
		AlarmLight   *yamlOutput `yaml:"alarm_light,omitempty,flow"`
		AlarmSounder *yamlOutput `yaml:"alarm_sounder,omitempty,flow"`
		Reassurance  *yamlOutput `yaml:"reassurance,omitempty,flow"`
	}
	yamlOutput struct {
		Pin       string        `yaml:"pin,omitempty"`
		Chip      string        `yaml:"chip,omitempty"`
		Line      *int          `yaml:"line,omitempty"`
		ActiveLow bool          `yaml:"active_low"`
		Feedback  *yamlFeedback `yaml:"feedback,omitempty"`
	}
	yamlFeedback struct {
		Pin       string `yaml:"pin,omitempty"`
		Chip      string `yaml:"chip,omitempty"`
		Line      *int   `yaml:"line,omitempty"`
		Pull      string `yaml:"pull"`
		ActiveLow bool   `yaml:"active_low"`
	}
	yamlMQTT struct {
		Broker         string  `yaml:"broker"`
		Base           string  `yaml:"base"`
		ClientID       string  `yaml:"client_id"`
		Username       string  `yaml:"username"`
		PasswordFile   string  `yaml:"password_file"`
		TLS            yamlTLS `yaml:"tls"`
		Keepalive      string  `yaml:"keepalive"`
		ConnectTimeout string  `yaml:"connect_timeout"`
		Heartbeat      string  `yaml:"heartbeat"`
		MaxPayload     int     `yaml:"max_payload"`
	}
	yamlTLS struct {
		CAFile     string `yaml:"ca_file"`
		CertFile   string `yaml:"cert_file"`
		KeyFile    string `yaml:"key_file"`
		ServerName string `yaml:"server_name"`
	}
	yamlHA struct {
		Enabled         bool   `yaml:"enabled"`
		DiscoveryPrefix string `yaml:"discovery_prefix"`
	}
	yamlCmds struct {
		Booking   bool     `yaml:"booking"`
		Operators []string `yaml:"operators,flow"`
		Readers   []string `yaml:"readers,flow"`
	}
	yamlJournal struct {
		MaxBytes  string `yaml:"max_bytes"`
		Retention string `yaml:"retention"`
	}
	yamlLog struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	}
)

// YAML returns the effective config with every key, in a form Parse reads
// back to an equal Config. With a preset, the preset is named and every
// policy field is written out too (so the output shows what is in force).
func (c *Config) YAML() ([]byte, error) {
	p := c.Policy
	y := yamlConfig{
		Room:     c.Room,
		StateDir: c.StateDir,
		Policy: yamlPolicy{
			Preset:               c.PolicyPreset,
			MaxDuration:          formatDuration(p.MaxDuration),
			Extension:            p.Extension.String(),
			Warnings:             []string{},
			EscalateAfter:        formatDuration(p.EscalateAfter),
			RepeatEvery:          formatDuration(p.RepeatEvery),
			ReannounceAfter:      formatDuration(p.ReannounceAfter),
			LockScope:            p.LockScope.String(),
			LockGrace:            formatDuration(p.LockGrace),
			EndOnVacancy:         p.EndOnVacancy,
			VacancyHold:          formatDuration(p.VacancyHold),
			VacateTimeout:        formatDuration(p.VacateTimeout),
			WelfareCheckEvery:    formatDuration(p.WelfareCheckEvery),
			PanicReset:           p.PanicReset.String(),
			InspectionAfterVisit: p.InspectionAfterVisit,
			FunctionTestEvery:    formatDuration(p.FunctionTestEvery),
		},
		Device: yamlDevice{
			Backend:       c.Device.Backend.String(),
			RereadEvery:   formatDuration(c.Device.RereadEvery),
			Flap:          yamlFlap{MaxChanges: c.Device.Flap.MaxChanges, Window: formatDuration(c.Device.Flap.Window)},
			BlinkPeriod:   formatDuration(c.Device.BlinkPeriod),
			FeedbackGrace: formatDuration(c.Device.FeedbackGrace),
			Inputs: yamlInputs{
				Door:     inputYAML(c.Device.Inputs.Door),
				Lock:     inputYAML(c.Device.Inputs.Lock),
				Presence: []yamlInput{},
				Panic:    yamlPanic(c.Device.Inputs.Panic),
				Staff:    inputYAML(c.Device.Inputs.Staff),
			},
			Outputs: yamlOutputs{
				InUse:        outputYAML(c.Device, controller.OutputInUse),
				Warning:      outputYAML(c.Device, controller.OutputWarning),
				AlarmLight:   outputYAML(c.Device, controller.OutputAlarmLight),
				AlarmSounder: outputYAML(c.Device, controller.OutputAlarmSounder),
				Reassurance:  outputYAML(c.Device, controller.OutputReassurance),
			},
		},
		MQTT: yamlMQTT{
			Broker:         c.MQTT.Broker,
			Base:           c.MQTT.Base,
			ClientID:       c.MQTT.ClientID,
			Username:       c.MQTT.Username,
			PasswordFile:   c.MQTT.PasswordFile,
			TLS:            yamlTLS(c.MQTT.TLS),
			Keepalive:      formatDuration(c.MQTT.Keepalive),
			ConnectTimeout: formatDuration(c.MQTT.ConnectTimeout),
			Heartbeat:      formatDuration(c.MQTT.Heartbeat),
			MaxPayload:     c.MQTT.MaxPayload,
		},
		HA:       yamlHA{Enabled: c.HomeAssistant.Enabled, DiscoveryPrefix: c.HomeAssistant.DiscoveryPrefix},
		Commands: yamlCmds{Booking: c.Commands.Booking, Operators: nonNil(c.Commands.Operators), Readers: nonNil(c.Commands.Readers)},
		Journal:  yamlJournal{MaxBytes: formatSize(c.Journal.MaxBytes), Retention: formatDuration(c.Journal.Retention)},
		Log:      yamlLog{Format: c.Log.Format.String(), Level: strings.ToLower(c.Log.Level.String())},
	}
	for _, w := range p.Warnings {
		y.Policy.Warnings = append(y.Policy.Warnings, formatDuration(w))
	}
	status := func(l *Line) *yamlFeedback {
		if l == nil {
			return nil
		}
		f := &yamlFeedback{Pin: l.Pin, Pull: l.Pull.String(), ActiveLow: l.ActiveLow}
		if l.Pin == "" {
			f.Chip, f.Line = l.Chip, &l.Line
		}
		return f
	}
	if d := c.Device; d.MainsFail != nil || d.BatteryLow != nil {
		y.Device.Power = &yamlPower{MainsFail: status(d.MainsFail), BatteryLow: status(d.BatteryLow)}
	}
	if h := c.Device.Healthy; h != nil {
		y.Device.Healthy = &yamlOutput{Pin: h.Pin, ActiveLow: h.ActiveLow}
		if h.Pin == "" {
			y.Device.Healthy.Chip, y.Device.Healthy.Line = h.Chip, &h.Line
		}
	}
	for i := range c.Device.Inputs.Presence {
		y.Device.Inputs.Presence = append(y.Device.Inputs.Presence, *inputYAML(&c.Device.Inputs.Presence[i]))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(y); err != nil {
		return nil, fmt.Errorf("marshal config of room %s: %w", c.Room, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config of room %s: %w", c.Room, err)
	}
	return buf.Bytes(), nil
}

func inputYAML(l *Line) *yamlInput {
	if l == nil {
		return nil
	}
	if e := l.EOL; e != nil {
		y := &yamlInput{Name: l.Point, EOL: &yamlEOL{Preset: e.Preset, Scheme: e.Scheme.String(),
			ADC: yamlADC{Bus: e.Bus, Address: e.Address, Channel: e.Channel}, PullUp: e.PullUp, SupplyMV: e.SupplyMV, Hold: formatDuration(e.Hold)}}
		for _, b := range e.Bands {
			yb := yamlBand{Band: b.Band.String(), From: int64(b.From)}
			if !math.IsInf(b.To, 1) {
				to := int64(b.To)
				yb.To = &to
			}
			y.EOL.Bands = append(y.EOL.Bands, yb)
		}
		return y
	}
	activeLow := l.ActiveLow
	y := &yamlInput{Name: l.Point, Pin: l.Pin, Pull: l.Pull.String(), ActiveLow: &activeLow, Debounce: formatDuration(l.Debounce)}
	if l.Pin == "" {
		y.Chip, y.Line = l.Chip, &l.Line
	}
	return y
}

// yamlPanic writes the panic points: one unnamed point as a single line,
// anything else as a list.
type yamlPanic []Line

func (p yamlPanic) IsZero() bool { return len(p) == 0 }

func (p yamlPanic) MarshalYAML() (any, error) {
	if len(p) == 1 && p[0].Point == "" {
		return flowNode(inputYAML(&p[0]))
	}
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for i := range p {
		n, err := flowNode(inputYAML(&p[i]))
		if err != nil {
			return nil, err
		}
		list.Content = append(list.Content, n)
	}
	return list, nil
}

// flowNode encodes v as a node in flow style ({pin: GPIO23, ...}).
func flowNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	n.Style = yaml.FlowStyle
	return &n, nil
}

func outputYAML(d Device, o controller.Output) *yamlOutput {
	l, ok := d.Outputs[o]
	if !ok {
		return nil
	}
	y := &yamlOutput{Pin: l.Pin, ActiveLow: l.ActiveLow}
	if l.Pin == "" {
		y.Chip, y.Line = l.Chip, &l.Line
	}
	if f, ok := d.Feedback[o]; ok {
		y.Feedback = &yamlFeedback{Pin: f.Pin, Pull: f.Pull.String(), ActiveLow: f.ActiveLow}
		if f.Pin == "" {
			y.Feedback.Chip, y.Feedback.Line = f.Chip, &f.Line
		}
	}
	return y
}

// formatDuration writes d the way people write it: "2h", "1h30m", "10m",
// "500ms", "0s" (time.Duration.String without the trailing zero units).
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatSize writes n with the largest binary unit that divides it.
func formatSize(n int64) string {
	switch {
	case n != 0 && n%GiB == 0:
		return fmt.Sprintf("%dGiB", n/GiB)
	case n != 0 && n%MiB == 0:
		return fmt.Sprintf("%dMiB", n/MiB)
	case n != 0 && n%KiB == 0:
		return fmt.Sprintf("%dKiB", n/KiB)
	}
	return fmt.Sprint(n)
}

// nonNil returns l, or an empty list for nil (written [] in YAML).
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
