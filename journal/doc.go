/*
Package journal is a room's append-only journal: every step of the
controller is written and synced here before anything of it is published,
and a restarted room resumes from it.

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
	                                          a damaged segment set aside

The lock is a flock(2) on the directory itself, so no lock file exists and a
read-only directory can be locked. Two kinds of temporary file appear while
a file is being replaced: head.tmp (creating the head) and
seg-….log.tmp (rewriting a repaired segment); Open deletes every name ending
in .tmp, since the file it was to replace is still intact (or, for a
new head, not there yet). Any other name is
ignored, the set-aside copies included.

# Segments

A segment is named "seg-", the LSN of its first entry in 20 zero-padded
decimal digits, and ".log", so names sort in LSN order. It holds frames back
to back and nothing else: no file header, no padding, no alignment. Segments
are not preallocated; they grow by each Append.

The segment with the highest name is the active one, the only one appended
to (recovery may also append markers to an older one, see below). Append
encodes its entries, writes them with one WriteAt at the end of the active
segment and makes them durable with one fdatasync (fsync outside Linux); a
group of steps given to one Append is committed together. Only then are the
entries visible to readers. If the write or the sync fails, the segment is
cut back to its previous size (a segment just created is removed). A new segment is created (O_EXCL, then the
directory is synced) when there is no active segment that can be written,
as in a new journal, or when an Append begins with a checkpoint.

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
written, the epoch and a small opaque blob for the daemon (its room and time
axis, JSON). It is exactly 4096 bytes: two slots of 2048 bytes.

	off     size  field
	0       4     magic "RJH1"
	4       8     counter     uint64: which slot is newer
	12      8     acked LSN   uint64 } the acknowledgement position (Pos): every message
	20      4     acked Msg   uint32 } before message Msg of entry LSN was acknowledged
	24      8     hwm         uint64: highest LSN written
	32      8     epoch       uint64
	40      2     n           uint16: blob length, at most MaxHeadBlob (2002)
	42      n     blob
	42+n    4     CRC-32C of bytes 0 to 42+n

The bytes after the CRC are unused and may hold an older slot's remains. A
write takes the counter one higher, overwrites slot counter%2 (even: the
first, odd: the second) and syncs; reading takes the valid slot with the
higher counter, so a write torn by a crash leaves the other slot in force.
When neither slot is valid (Recovery.HeadDamaged) the state is zero: the
acknowledgement position is lost and messages are published again from the
oldest entry kept.

The head is allocated once at its full size: written whole as head.tmp
(first state in the first slot, counter 1, so the first write after it,
counter 2, overwrites that same slot), synced, renamed to head and the
directory synced; a head of any other size is replaced the same way. After
that it is only overwritten in place, so recording progress never needs new
space on a full disk. It is written at Open (with the state recovery settled
on; the counter restarts at 1 there, so until the next write the previous
run's newer slot stays in force), then by a background goroutine at most
once per HeadEvery (one second) when something changed (an Append reached the
disk, Ack moved the position, SetBlob), by Sync, and by Close. A failed write
is tried again at the next tick. An acknowledgement less than HeadEvery old
at a crash may therefore be lost, and its messages published again. Open
reads the acknowledgement position, the highest LSN and the blob; the epoch
is written but not read back. A new journal closed without ever being given
an entry or a blob removes its head, so it opens as new again.

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
    resumes from the disk's older snapshot.

So within an epoch a seq names one record. The choice of a new epoch at Open
is recorded only by the entries then appended in it: a process that dies
after Open and before its first Append leaves a journal that the next Open
finds repaired and continues in the old epoch.

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
    deleted, say). They are counted as lost; an intact segment gets its
    markers appended at its end. (This is right only when the markers sort
    after its entries. For a gap before or inside an intact segment, the
    bytes appended are the end of its last entry, not a marker, and the
    entries after the gap are read at wrong offsets until the next Open. In
    an older segment that Open sets the segment aside as damaged; in the
    last one it cuts the bytes as a torn tail and finds the same gap again.)

Damage is reported in Recovery.Damage, Recovery.Lost (a lower bound) and
Recovery.SetAside; whoever opens the journal raises a critical system_fault
for it (daemon.JournalFault), cleared by acknowledgement. If the segment
cannot be set aside or rewritten, its valid entries are read where they are
and the damage is reported again at the next Open. Set-aside copies are
kept for examination: the journal never deletes them and they do not count
in Size or MaxBytes. A journal with nothing readable, or with loss after its
latest snapshot, continues in a new epoch (above).

# Retention and MaxBytes

After every head tick (and at Sync and Close), compaction deletes whole
segments from the oldest on, never the active one, for as long as the
oldest one's entries are all acknowledged (its last LSN is below the
acknowledgement position's), later entries kept include a snapshot, and
either its last entry's step time is older than Options.Retention (24 hours
by default) on Options.Now (the daemon's time axis) or the segments
together are above Options.MaxBytes (64 MiB by default). Replay of recent
entries and answers to redelivered commands reach back only as far as the
oldest segment kept; older LSNs give ErrCompacted. Entries not yet
acknowledged are never deleted, however large: OverLimit reports when they
alone exceed MaxBytes. Size counts the segments only, not the head nor the
set-aside copies.

# When the disk refuses

When the write or the sync of an Append fails (ENOSPC, a read-only file
system, EIO, whatever the error), the segment is cut back and the entries
are kept in memory, the backlog: visible to readers at once, published from
there, and under a new epoch from the first refusal on. Append returns a
*DiskError. Every later Append, even one without entries, first tries
again: the backlog and its own entries in one write, into the active
segment (a new one if there is none). The backlog is bounded by Options.MaxBacklog entries (10,000) and
Options.MaxBacklogBytes (16 MiB, estimated); above, its oldest entries are
dropped (Get says ErrLost; DiskError.Dropped counts them), which leaves a gap
in LSNs inside the segment once the backlog is written (see missing
entries under Recovery and repair). The head, written in
place, keeps recording acknowledgements. When the disk takes the backlog
again it is written with the LSNs and epoch it was given and the journal
leaves this mode. A journal that cannot be written at Open (a read-only
state directory, Recovery.WriteErr) starts in this mode.
*/
package journal

// Where the code is:
//
//	journal.go  the Journal type, Options, errors, Open, Abandon and Close
//	recover.go  Recovery: reading, repairing and indexing the segments at Open
//	append.go   Append, the frames' write and sync, the backlog, DiskError
//	read.go     readers: Get, Since, SnapshotAt, the seq index, the cache
//	compact.go  the background tick, compaction, retention, MaxBytes
//	head.go     the head file, Ack and the daemon's blob
//	entry.go    Entry, Epoch and the frame encoding
//	fs.go       the file system interface and its OS implementation
