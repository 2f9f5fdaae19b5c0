package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/roomd/roomd/configs"
	"github.com/roomd/roomd/controller"
	"github.com/roomd/roomd/daemon"
	"github.com/roomd/roomd/link"
	"github.com/roomd/roomd/link/outbox"
	"github.com/roomd/roomd/sim"
)

// File names inside the state directory, beside daemon.StateFileName.
const (
	outboxDir   = "outbox"
	repliesFile = "replies.json"
)

// roomLink is the MQTT side of a running room: the client, its outbox and
// the adapter the loop uses.
type roomLink struct {
	client  *link.Client
	outbox  *outbox.Outbox
	adapter *daemon.MQTTLink
}

// openLink opens the outbox and the reply cache in the state directory,
// starts the MQTT client and its adapter. In simulator mode sim/set drives
// simRoom and its outputs are published (retained) on sim/outputs.
func openLink(cfg *configs.Config, simRoom *sim.Room, log *slog.Logger) (*roomLink, error) {
	m := cfg.MQTT
	topics, err := link.NewTopics(m.Base, cfg.Room)
	if err != nil {
		return nil, fmt.Errorf("mqtt topics: %w", err)
	}
	password := ""
	if m.PasswordFile != "" {
		if password, err = link.ReadPasswordFile(m.PasswordFile); err != nil {
			return nil, fmt.Errorf("mqtt: %w", err)
		}
	}
	var tlsConf *tls.Config
	if files := link.TLSFiles(m.TLS); !files.Empty() {
		if tlsConf, err = files.Config(); err != nil {
			return nil, fmt.Errorf("mqtt tls: %w", err)
		}
	}
	ob, err := outbox.Open(filepath.Join(cfg.StateDir, outboxDir), outbox.Limits{MaxEntries: m.Outbox.MaxEntries, MaxBytes: m.Outbox.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	client, err := link.New(link.Options{
		Broker: m.Broker, ClientID: m.ClientID, Username: m.Username, Password: password, TLS: tlsConf,
		Keepalive: m.Keepalive, ConnectTimeout: m.ConnectTimeout, Topics: topics, Outbox: ob,
		MaxPayload: m.MaxPayload, SimMode: simRoom != nil,
	}, log)
	if err != nil {
		_ = ob.Close()
		return nil, fmt.Errorf("mqtt client: %w", err)
	}
	replies, repErr := link.OpenReplies(filepath.Join(cfg.StateDir, repliesFile), 0)
	opts := daemon.MQTTLinkOptions{Room: cfg.Room, Replies: replies, MaxPayload: m.MaxPayload, Logger: log.With("component", "commands")}
	if simRoom != nil {
		opts.SimSet = func(p []byte) error {
			c, err := sim.ParseControl(p)
			if err != nil {
				return err
			}
			return simRoom.Apply(c)
		}
		go publishSimOutputs(simRoom, client)
	}
	ad := daemon.NewMQTTLink(client, opts)
	if repErr != nil {
		log.Error("reply cache unusable; starting with an empty one", "err", repErr)
		ad.Fault(controller.Fault{Source: daemon.SourceReplies, Active: true, Severity: controller.SeverityWarning, ClearOnAck: true,
			Detail: "reply cache unusable; a redelivered command may be applied twice"})
	}
	if rec := ob.Recovered(); rec.Dropped > 0 {
		log.Error("outbox damaged on disk; records lost", "dropped", rec.Dropped)
		ad.Fault(controller.Fault{Source: "outbox_recovery", Active: true, Severity: controller.SeverityCritical, ClearOnAck: true,
			Detail: fmt.Sprintf("outbox damaged on disk: at least %d records lost", rec.Dropped)})
	}
	go ad.Run()
	return &roomLink{client: client, outbox: ob, adapter: ad}, nil
}

// publishSimOutputs mirrors the simulated outputs on sim/outputs until the
// room is closed.
func publishSimOutputs(r *sim.Room, c *link.Client) {
	w := r.Watch()
	c.PublishSimOutputs(sim.EncodeOutputs(r.Outputs()))
	for ch := range w {
		c.PublishSimOutputs(sim.EncodeOutputs(ch.Outputs))
	}
}
