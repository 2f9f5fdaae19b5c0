// Package roomclient is a Go client of the rooms' MQTT contract (version 2,
// docs/mqtt.md) for integrators: a booking system, a guard console, a
// dashboard. It connects to the broker, sends commands and waits for their
// replies, hands over every record once, fills the gaps with replays, and
// keeps the list of rooms. visitctl and roombench are built on it.
//
// # Connecting
//
// Dial connects and subscribes to the streams asked for (Options.Streams:
// Events, Alerts, States, Infos, Availabilities, Replies; every room, or
// Options.Rooms), at QoS 1, and returns once the broker granted them. By
// default the session is persistent: the broker queues every message for
// the client while it is away and delivers them when it comes back, so the
// client id must be the same at every start (Options.ClientID, or the
// username). The broker config shipped in configs/mosquitto sets
// use_username_as_clientid: the broker takes the username as the client id
// whatever the client says, so an identity has exactly one session. Run one
// Client per identity, in one process: a second connection under the same
// username (a second process, or visitctl run with the booking system's
// credentials) takes the session over and disconnects the first. After a
// lost connection the client reconnects by itself (backoff up to
// Options.MaxReconnectInterval) and subscribes again.
//
// Messages reach Options.OnMessage in arrival order on the client's
// receiving goroutine, decoded by topic into the wire types of package contract
// (contract.EventMessage, contract.StateMessage, contract.InfoMessage,
// contract.ReplyMessage), with the time they arrived. The callback must not
// block: hand the message to a channel.
//
// # Commands
//
// Build a command with StartVisit, ExtendVisit, EndVisit, AckAlert,
// SetService, SetReady, GetState or Replay, and Send it:
//
//	reply, err := c.Send(ctx, "room-1", roomclient.StartVisit("B-1742", 90*time.Minute))
//
// Send gives the command a fresh request_id and an expires_at of now plus
// Options.CommandLife (1 minute by default, at most the 1 hour a room
// accepts), checks it with the room's own decoder, subscribes to the room's
// reply topic if needed, publishes it, and waits for the reply carrying its
// request_id. While no reply comes it publishes the very same command again
// every Options.RetryEvery (2 s): the room answers a request_id it has
// answered before with that first reply and never applies a command twice,
// so a repeat is safe. A busy reply (the room's queue was full; nothing was
// applied) is answered the same way: the command goes again. The room
// refuses a command at or after its expires_at (expired), so a command held
// up by a broker or a network never acts late; and asking again after it
// expired still tells what happened: the first reply if it was applied,
// expired if not. A refusal is a reply whose Err is a *RefusedError (code,
// message, blockers); when ctx ends first Send returns a *NoReplyError.
//
// Commands go on {base}/{room}/cmd, the booking system's anonymous topic,
// or, with Options.Operator, on {base}/{room}/cmd/{operator}: the room then
// records the operator as "by", and the shipped ACL lets each identity send
// only under its own username. Post publishes a command once without
// waiting for the reply; Prepare fills the request id and expiry so that a
// command can be kept and sent again later (for instance from a booking
// system's outbox after a restart).
//
// # Records once, gaps replayed
//
// Every record (events topic) carries its room's epoch and seq. A room
// numbers its records 1, 2, 3, ... per epoch and publishes them in order, at
// least once: after a reconnection some come again. With Options.OnRecord
// set the client subscribes to events, replies and states, and delivers
// each (room, epoch, seq) once (Tracker). A seq beyond the next one
// received, or a state whose seq is above the last record received, reveals
// missing records: after Options.ReplayDelay (a late copy may still come)
// the client sends replay for them (at most contract.MaxReplay per request);
// the room publishes them again before its reply, and they reach OnRecord
// with Verdict Filled. When the room answers replay_unavailable (its
// journal no longer holds them: compacted after info.retention_s, 24 h by
// default, or lost) or replays without them, the client gives the gap up and
// calls Options.OnLoss: read the room's state (GetState) to reconcile, since
// the state is always current.
//
// An epoch changes only when a room lost its journal and cannot say which
// seqs it handed out; seqs may then repeat numbers, never keys. The first
// record of a new epoch has NewEpoch set: gap detection starts afresh there,
// and the records of the new epoch published before it are not detected as
// missing, so reconcile from the state as after a loss.
//
// Keep Client.Marks (room → epoch and highest seq) with what you did with
// the records, and give them back in Options.Resume after a restart: records
// after a mark that the broker does not redeliver are then replayed too.
// The alerts topic carries the alert records again, on their own topic for
// consoles that only want alerts; OnRecord reads events only.
//
// # The room registry
//
// With Infos, Availabilities and States among the streams (RegistryStreams)
// the client keeps the list of rooms under the base from their retained
// topics (Client.Rooms, or a Registry of your own): each room's info (roomd
// and contract versions, policy with every duration in seconds, heartbeat,
// retention, roles wired), whether it is online or offline (its Last Will
// says offline when it dies), when its latest state was current and when it
// was last heard of. A room that is not offline and sent no state for more
// than StaleFactor (2) × info.heartbeat_s is Stale: a room publishes its
// state at least every heartbeat, so it missed one. A room whose retained
// topics are all cleared (visitctl decommission) leaves the list.
//
// # Other topics
//
// Subscribe and Publish reach topics outside the rooms' streams (a probe,
// the simulator's sim/set, clearing a retained topic).
package roomclient
