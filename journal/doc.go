/*
Package journal is a room's append-only journal: every step of the
controller is written here (into the file system) before anything of it is
published, synced to the card right behind it, and a restarted room resumes
from it.

A journal lives in one directory (the state directory's "journal"). Open
locks it, recovers it and reports what it found; the room's loop appends one
entry per step, readers get entries by LSN, and the publisher moves the
acknowledgement position:

	j, err := journal.Open(dir, journal.Options{Now: clock.Now})
	...
	rec := j.Recovered() // damage, a new epoch, a read-only directory
	snap, _ := j.Latest() // the state to resume from
	...
	err = j.Append(journal.EntryOf(ctl, acts, operator))
	e, err := j.Get(lsn)
	j.Ack(journal.Pos{LSN: e.LSN + 1}) // every message of e was acknowledged
	...
	err = j.Close()

Damage is repaired by Open and reported in the Recovery, never returned as
an error; Open fails only when the directory cannot be locked (ErrLocked:
another process has it), listed, or its head file read.

# Directory layout

	journal/
	    head                                  acknowledgement position, highest LSN, daemon's blob
	    seg-00000000000000000001.log          entries from LSN 1
	    seg-00000000000000000873.log          a checkpoint at LSN 873, then entries
	    seg-00000000000000000873.log.damaged-20260301T140502.123456789Z
	                                          a damaged segment set aside (named on Options.Now)

The lock is a flock(2) on the directory itself, so no lock file exists and a
read-only directory can be locked. Two kinds of temporary file appear while
a file is being replaced: head.tmp (creating the head) and
seg-….log.tmp (rewriting a repaired segment); Open deletes every name ending
in .tmp, since the file it was to replace is still intact (or, for a
new head, not there yet). Any other name is ignored, except set-aside
copies (below).

# Segments

A segment is named "seg-", the LSN of its first entry in 20 zero-padded
decimal digits, and ".log", so names sort in LSN order. It holds frames back
to back and nothing else: no file header, no padding, no alignment. Segments
are not preallocated; they grow by each Append.

The segment with the highest name is the active one, the only one appended
to (recovery may also write markers into an older one, see below). Append
encodes its entries and writes them with one WriteAt at the end of the
active segment: into the kernel's page cache, which outlives the process.
Then the entries are visible to readers (the publisher sends them at once)
and Append returns; it never waits for the card. If the write fails, the
segment is cut back to its previous size (a segment just created is
removed). A new segment is created (O_EXCL) when there is no active segment
that can be written, as in a new journal, or when an Append begins with a
checkpoint.

# The syncer: durability behind the step (sync.go)

A background goroutine, the syncer, makes what was written durable: one
fdatasync (fsync outside Linux) per segment written since its last sync,
and a sync of the directory when a segment was created; every Append made
meanwhile shares it (group commit). Syncs start at most SyncGap (250 ms)
apart: the first step after a quiet spell is synced at once, steps that come
faster share the next sync (a command flood at the rate limit costs 4 syncs
a second, not 20). Durable reports how far it got. Each
sync is measured (SyncStats, a reusable type a metrics exporter can read:
a histogram and the p50/p99 of the last syncs); the daemon raises a warning
when the card is slow, and Health wakes when one sync takes longer than
SyncStall (1 s). A sync that fails is kept (Append returns a *DiskError,
Health wakes), the files are synced again at the next try, and the head
gets the refusal mark (below): Linux may have dropped the pages that failed
to sync, so whatever the next syncs say, a restart without a clean stop
continues in a new epoch.

What a crash costs: a process that dies loses nothing it appended (the
kernel has the bytes). Only the death of the system (a power cut) can lose
what the syncer had not synced yet, at most one sync's worth; those steps
may have been published. The head records the boot (Linux's boot_id) and
whether the journal was closed cleanly, so the next Open knows when that
can have happened, and continues in a new epoch above the seq reservation
(Epochs, below).

# Frames

Every entry is one frame. Integers are little-endian; offsets are from the
start of the frame:

	off  size  field
	0    4     length    uint32: length of the body (offset 8 to the end), 44 to 16 MiB
	4    4     crc       uint32: CRC-32C (Castagnoli) of the 4 length bytes, then of the body
	8    1     format    1
	9    1     flags     what the entry holds, below
	10   8     lsn       uint64, never 0
	18   8     epoch     uint64, never 0
	26   8     at        int64: the step's time, Unix nanoseconds (UTC on reading)
	34   8     seqFirst  uint64: lowest seq of the entry's records and messages, 0 if none
	42   8     seqLast   uint64: highest such seq, 0 if none
	50   ...   payload   JSON object, at least "{}"

Flags: 0x01 snapshot, 0x02 replies, 0x04 checkpoint, 0x08 messages,
0x10 records, 0x20 cached replies, 0x40 lost marker. A frame is valid when
its length is in range, the whole frame is there, the CRC matches, the
format is 1, no unknown flag is set, lsn and epoch are not zero and
seqFirst <= seqLast. The CRC covers one frame only, so after damage the next
valid frame can be found and checked on its own. Recovery, compaction and
the seq index (SeqRange, EntriesWithSeqs) work from these fixed 50 bytes;
the JSON is decoded only when an entry is read.

The payload's keys, each left out when empty (encoding/json; the []byte
payloads of messages and cached replies are therefore base64 strings):

	records    []controller.Record    announced in the step, each with its seq
	snapshot   controller.Snapshot    the state after the step, if it changed
	replies    [{operator, reply}]    the controller's answers to commands
	messages   [{topic, payload, seq}] MQTT messages carried verbatim
	cached     [{operator, request_id, payload}] encoded replies kept for redelivery
	lost_to    uint64                 markers only

The LSN, epoch, time and checkpoint flag are in the fixed part only.

# Entries

An Entry is one step of the room (EntryOf builds it from the controller's
actions): the records it announced, the snapshot of the state after it when
the state changed, and its replies with the operator who sent each command,
so that a redelivered (operator, request_id) is answered again instead of
applied. Announcing a record always changes the state (its seq), so an entry
of EntryOf with records always carries a snapshot. Messages and cached replies are
written only by package migrate: the earlier layout's undelivered MQTT
messages, published again from the journal, and its already encoded
replies, which are never published and only answer redelivered commands.

The LSN is the entry's position, one more per entry for the life of the
journal. Open continues above the last entry, the last lost range, the
head's highest LSN and the acknowledged LSN, so an LSN is not given twice
even when segments at the end are gone (a deleted journal starts again at 1,
in a new epoch).

A lost marker is a frame written by recovery with flag 0x40 and the payload
{"lost_to":N}: entries LSN to N were lost. Its epoch and time are taken from
the last entry before it in the segment it is written into, or the
segment's first entry, or are 1 and the Unix epoch in a segment with none. Reading one gives ErrLost; its
purpose is that the next Open knows the range was already reported.

# Checkpoints

When the active segment has reached Options.SegmentBytes (1 MiB by default)
and a snapshot exists, the next Append (with no backlog waiting, see below)
first adds a checkpoint entry, which begins a new segment: flags 0x04|0x01,
a copy of the latest snapshot and the time of the step that made it. It takes
an LSN and the current epoch like any entry and carries nothing to publish.
So every segment begun because the active one was full starts with the state
in force, and all older segments can be deleted without losing the state to
resume from. (A segment begun because none could be written, as in a new
journal, starts with whatever entry comes.) Before the
room's first snapshot, and while a backlog waits, the active segment is not
split and may grow past SegmentBytes.

# The head file

The head file records how far the broker has acknowledged, the highest LSN
synced, the epoch, the seq reservation and floor, the boot and whether the
journal was closed cleanly, and a small opaque blob for the daemon (its room
and time axis, JSON). It is exactly 4096 bytes: two slots of 2048 bytes.

	off     size  field
	0       4     magic "RJH2" ("RJH1", without 40 to 76, is still read)
	4       8     counter     uint64: which slot is newer
	12      8     acked LSN   uint64 } the acknowledgement position (Pos): every message
	20      4     acked Msg   uint32 } before message Msg of entry LSN was acknowledged
	24      8     hwm         uint64: highest LSN synced
	32      8     epoch       uint64: the epoch in force (read back: see Epochs)
	40      8     reserved    uint64: no seq above it was ever handed out
	48      8     boot        uint64: hash of the boot id of the system that wrote it
	56      8     refused     uint64: first LSN the disk refused or failed to sync; 0 none
	64      8     floor       uint64: seqs and alert numbers continue above it
	72      4     flags       uint32: 1 = closed cleanly, everything durable
	76      2     n           uint16: blob length, at most MaxHeadBlob (1966)
	78      n     blob
	78+n    4     CRC-32C of bytes 0 to 78+n

The bytes after the CRC are unused and may hold an older slot's remains. A
write takes the counter one higher, overwrites slot counter%2 (even: the
first, odd: the second) and syncs; reading takes the valid slot with the
higher counter, so a write torn by a crash leaves the other slot in force.
When neither slot is valid (Recovery.HeadDamaged) the state is zero: the
acknowledgement position is lost and messages are published again from the
oldest entry kept.

The head is allocated once at its full size: written whole as head.tmp
(first state, counter 1, in slot 1, so the first write after it, counter 2,
goes to slot 0 and never overwrites the only valid slot), synced, renamed
to head and the directory synced; a head of any other size is replaced the
same way. After that it is only overwritten in place, so recording
progress never needs new space on a full disk. It is written at Open (with
the state recovery settled on, the counter continuing from the one read,
and synced before Open returns: a new epoch chosen there is durable), then
by a background goroutine at most once per HeadEvery (one second) when
something changed (a sync, Ack moved the position, SetBlob), at once when
the seq reservation must move or the disk refused, by Sync, and by Close
(with the clean flag when everything is durable). A failed write is tried
again at the next tick. An acknowledgement less than HeadEvery old at a
crash may therefore be lost, and its messages published again. A new
journal closed without ever being given an entry or a blob removes its
head, so it opens as new again.

# Epochs

An Epoch names one sequence space of a room's records: a random non-zero
64-bit number, 16 hex digits on the wire, kept in every frame. Consumers
deduplicate by (room, epoch, seq). The controller hands out seqs one by one,
continuing from the snapshot it resumes from. Since every entry with records
carries the snapshot after it, the latest intact snapshot covers every seq of
the entries before it; seqs handed out after it can only be in entries after
it. So Open keeps the epoch of the last entry on disk when nothing after the
latest snapshot was lost, and otherwise starts a new epoch, rather than risk
handing out, under a seq a consumer may already hold, a different record. A
new epoch begins:

  - when there is no journal (no segment, no valid head): Recovery.Fresh;
  - when the journal holds no readable entry;
  - when anything at or after the latest snapshot was lost (damaged bytes,
    missing entries, a last segment gone that the head's highest LSN
    reveals, a snapshot that cannot be read);
  - when the journal cannot be written at Open (Recovery.WriteErr);
  - at the first Append the disk refuses: entries that may never reach the
    disk but may be published must not share an epoch with a restart that
    resumes from the disk's older snapshot;
  - after a system restart (another boot id) without a clean stop, or with
    the refusal mark: steps published but never synced may be missing;
  - when the room finds its journal behind what it already announced (the
    broker's retained state), or cannot check it at start (Rebase).

So within an epoch a seq names one record. The choice of a new epoch at
Open is durable: the head carries it, synced before Open returns, and an
Open whose head was written after the last entry takes the head's epoch.

# The seq reservation and floor

Append keeps the head's reservation ReserveBlock (4096) seqs ahead of the
highest seq appended, moving it in the background when less than half a
block is left, so it is never on a step's path. No record above the
reservation was ever published. When steps published from memory may be
lost (a power cut, the refusal mark), Open sets Recovery.SeqFloor to the
reservation, and the room continues with seqs and alert numbers above it
(controller.NewAbove, or the restored snapshot raised to it): an alert
number is never above the seq of the record that raised it, so no alert id
is handed out twice for the life of the room. The floor in force is kept
in the head (it only grows), so a later restart keeps it.

# Recovery and repair

Open reads the head, deletes *.tmp files, then reads every segment whole in
name order and indexes each valid frame whose LSN is above the previous
valid entry's (or the end of its lost range) and not below its segment's
first LSN. What it finds:

  - A torn tail: in the last segment, an invalid frame with no valid frame
    after it that runs past the end of the file or has a length out of range
    (zero, say). It is a write cut short, never synced, so never reported
    to the appender nor published. The file is cut to the last valid frame
    and Recovery.TornBytes says how much was removed; this is not damage and
    raises no fault.
  - Damaged bytes anywhere else (a complete frame that fails its CRC or its
    header checks, garbage followed by valid frames, any damage in an older
    segment): the scan resumes at the next offset where a valid frame
    starts, and the entries lost are counted by the gap in LSNs. The segment
    is renamed to its name plus ".damaged-" and the wall clock's UTC time
    (20060102T150405.000000000Z), and its valid entries, with a lost marker
    for every range lost in or right after it, are written back under its
    own name (through .tmp, synced, renamed).
  - A segment that cannot be read: it is set aside whole and its entries are
    lost.
  - Missing entries: a gap in LSNs between segments or inside one, or a
    head whose highest LSN is above the last entry (the last segment
    deleted, say). They are counted as lost, once (a gap between two
    segments is marked in the earlier one only). An intact segment whose
    markers all sort after its entries gets them appended at its end; one
    with a gap before or between its entries (the backlog dropped entries,
    then the disk took the rest) is written anew in LSN order, through
    .tmp, so that every entry keeps a right offset.
  - A torn end that cannot be cut (the file cannot be written): the
    segment is not appended to; the next entries go to a new segment, and
    a later Open cuts the torn bytes (a torn end of an older segment is
    treated as torn too; what it lost shows as a gap in LSNs).

Damage is reported in Recovery.Damage, Recovery.Lost (a lower bound) and
Recovery.SetAside; whoever opens the journal raises a critical system_fault
for it (daemon.JournalFault), cleared by acknowledgement. If the segment
cannot be set aside or rewritten (a full disk), the set-aside copy is put
back under its name, its valid entries are read where they are and it is
repaired at a later Open; a copy whose segment is missing (set aside by a
version that left it so) is read as that segment. Set-aside copies count
in Size and MaxBytes and are kept within a quarter of MaxBytes: beyond it
the oldest are deleted at Open and reported (Recovery.DroppedCopies, in the
journal fault). Markers take the epoch and time of the entry before them
(in the segment, or the segments before it). A journal with nothing
readable, or with loss after its latest snapshot, continues in a new epoch
(above).

# A directory deleted or replaced while running (watch.go)

At every head tick the journal compares its directory's identity (device
and inode) and its active segment with what it opened. Deleted, or
replaced: it writes what it holds (every entry not yet acknowledged, read
through the files still open, then a checkpoint of the latest snapshot)
into a new directory with a head of the same epoch, reservation and floor,
moves a directory found in its place aside, and leaves a notice (Notices,
Health wakes) that the daemon raises as a critical journal fault. The room
goes on as if nothing happened, except that replay and repeated commands
lose what was older.

# Retention and MaxBytes

After every head tick (and at Sync and Close), compaction deletes whole
segments from the oldest on, never the active one, for as long as the
oldest one's entries are all acknowledged (its last LSN is below the
acknowledgement position's), later entries kept include a snapshot, and
either its last entry's step time is older than Options.Retention (24 hours
by default) on Options.Now (the daemon's time axis) or the segments
together are above Options.MaxBytes (64 MiB by default). A segment that is not yet durable is never deleted. Replay of recent
entries and answers to redelivered commands reach back only as far as the
oldest entry kept (Window: the retention, or less when MaxBytes made
compaction delete entries inside it; the room announces it in info as
window_s); older LSNs give ErrCompacted. Segments are at most an eighth of
MaxBytes (SegmentBytes defaults to min(1 MiB, MaxBytes/8)) and compaction
runs as soon as a segment fills and after every sync above the bound, so the
journal stays within MaxBytes plus one segment (plus, under a flood, what
came within the last SyncGap and is not synced yet: such a segment is not
deleted), unless unacknowledged entries alone exceed it: they are never
deleted, however large, and OverLimit reports it. Size counts the segments
and the set-aside copies, not the head.

# When the disk refuses

When the write of an Append fails (ENOSPC, a read-only file system, EIO,
whatever the error), the segment is cut back and the entries are kept in
memory, the backlog: visible to readers at once, published from
there, and under a new epoch from the first refusal on. Append returns a
*DiskError. Every later Append, even one without entries, first tries
again: the backlog and its own entries in one write, into the active
segment (a new one if there is none). The backlog is bounded by Options.MaxBacklog entries (10,000) and
Options.MaxBacklogBytes (16 MiB, estimated); above, its oldest entries are
dropped (Get says ErrLost; DiskError.Dropped counts them), which leaves a gap
in LSNs inside the segment once the backlog is written (see missing
entries under Recovery and repair). The head, written in
place, keeps recording acknowledgements, and gets the refusal mark at the
first refusal (a full disk still takes it): a crash before the backlog is
written and synced makes the next Open continue in a new epoch above the
reservation and say what the room may have forgotten (Recovery.MayHaveLost). When the disk takes the backlog
again it is written with the LSNs and epoch it was given and the journal
leaves this mode. A journal that cannot be written at Open (a read-only
state directory, Recovery.WriteErr) starts in this mode.
*/
package journal

// Where the code is:
//
//	journal.go  the Journal type, Options, errors, Open, Abandon and Close
//	recover.go  Recovery: reading, repairing and indexing the segments at Open
//	append.go   Append, the frames' write, the backlog, DiskError
//	sync.go     the syncer (group commit), the seq reservation, the boot id
//	syncstats.go SyncStats, the syncs' latency for the daemon and metrics
//	delayfs.go  DelayFS and ParseSyncDelay: sync latency injected for tests and roombench
//	watch.go    a directory deleted or replaced while running
//	read.go     readers: Get, Since, SnapshotAt, the seq index, the cache
//	compact.go  the background tick, compaction, retention, MaxBytes
//	head.go     the head file, Ack and the daemon's blob
//	entry.go    Entry, Epoch and the frame encoding
//	fs.go       the file system interface and its OS implementation
