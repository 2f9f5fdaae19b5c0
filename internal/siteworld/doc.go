// Package siteworld runs the world of bridged sites that the tests of
// configs/mosquitto and roombench's sites suite both drive: site mosquitto
// brokers running the shipped files (mosquitto.conf, acl, the site-bridge.conf
// drop-in, and site-tunnel.conf under stunnel for the bridge's TLS), each
// bridged to a central broker through a WAN that can be cut; real roomd
// rooms at each site (room.Open, the simulator backend); a guard console per
// site; and a booking system at the centre that deduplicates records and
// asks the rooms to replay gaps. Every client speaks TLS with its own
// identity (Password), as in production.
//
// The centre is pluggable (Centre): CentralMosquitto is the shipped
// central.conf and central.acl on one mosquitto; another engine, or a
// cluster of nodes, stands in by implementing Centre. A site's bridge lists
// every node's bridge address (mosquitto's "address host:port host2:port2",
// tried in turn), each through a tunnel and a WAN link of its own; a site's
// WAN cuts them all at once. What the world keeps and checks does not depend
// on the engine: the booking system's ledger (first arrivals, duplicates,
// gaps, replays), the ground truth (every record in every room's journal),
// the guards, the press cycles, the WAN cuts, and the convergence of the
// retained topics (read with mosquitto_sub, a client nobody here wrote).
// What the world needs of the centre besides MQTT and TLS: the bridges' state
// flags on $SYS/broker/connection/<site>/state (LinkTopic), which the site
// brokers publish, retained, as their bridges come and go.
//
// Everything returns errors and needs no test, so that a benchmark can run a
// world as well as a test; Need skips or fails a test whose programs are
// missing. The world is test support: no production binary imports it.
package siteworld
