package contract

// The sources of system_fault alerts (controller.Fault.Source, the alert's
// "source" on the wire). docs/mqtt.md lists each with what clears it.
const (
	SourceJournal      = "journal"       // the journal was damaged at start (cleared by ack)
	SourceJournalWrite = "journal_write" // the disk refuses the journal (clears when it takes it again)
	SourceJournalFull  = "journal_full"  // undelivered entries above the journal's bound (clears below it)
	SourceJournalLost  = "journal_lost"  // steps dropped from memory while the disk refused them (cleared by ack)
	SourceJournalSync  = "journal_sync"  // the disk syncs slowly or stalled (a warning; clears when its syncs are fine again)
	SourceClock        = "clock"         // the time axis could not simply continue, or was corrected (cleared by ack)
	SourceInputs       = "inputs"        // the input backend failed to start
	SourceOutputs      = "outputs"       // an output could not be driven (cleared by ack)
	SourceLink         = "link"          // the broker has not taken the room's messages for a while (clears when it does)
	SourceCommands     = "commands"      // replies could not be queued; senders got no answer (cleared by ack)
	SourceMains        = "mains"         // the room's supply lost mains power and runs on its battery (warning; clears when mains returns)
	SourceBattery      = "battery"       // the battery is nearly flat: roomd stops cleanly before the power goes (critical; clears when it starts with the battery good)
)

// FaultSources lists every system_fault source.
var FaultSources = []string{SourceJournal, SourceJournalWrite, SourceJournalFull, SourceJournalLost, SourceJournalSync,
	SourceClock, SourceInputs, SourceOutputs, SourceLink, SourceCommands, SourceMains, SourceBattery}
