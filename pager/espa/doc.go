// Package espa speaks ESPA 4.4.4, the serial interface of paging systems,
// as the control station of a point-to-point link: roompager polls the
// paging system, and selects it to hand over a call.
//
// Sources (cited as [G] and [A] in the comments of this package):
//
//   - [G] "ESPA 4.4.4; Serial Data Interface For Paging Equipment",
//     annotated by Gordon Scott (2003) from the November 1984 original,
//     http://www.gscott.me.uk/ESPA.4.4.4/ : chardesc.html (2 character
//     description), protocol.html (3 the protocol: polling, selecting,
//     termination), datablock.html (4 data block: BCC, headers, records),
//     hardwspec.html (5 hardware, baud rates).
//   - [A] Nortel/Avaya "DECT Messenger Installation and Commissioning",
//     Book 1, module eESPA (NN43120-301): the temporary master waits for
//     ACK within a timeout, sends the block again a configured number of
//     times, then gives the transaction up; a bad BCC is answered NAK; the
//     controlling station has address 1.
//   - [Z] Zenitel wiki, "ESPA 4.4.4": a call-to-pager block byte by byte
//     (SOH 1 STX 1 US 550 RS 2 US CALL ME 101 RS ... ETX).
//
// What this package does, and where it comes from:
//
//   - Characters are IA5 (ISO 646) 7-bit: one start bit, seven data bits,
//     even parity, two stop bits [G 2.1]. Any standard rate from 300 to
//     9600 baud [G 5.5]; the site's paging system fixes which (OpenSerial).
//   - The control station polls with EOT then <address> ENQ; the polled
//     station answers EOT (nothing to send) or selects with <address> ENQ
//     and becomes temporary master [G 3.1, 3.2]. To send a call, the
//     control station polls itself (<own> ENQ), so becoming the temporary
//     master, and selects the paging system (<peer> ENQ); the paging
//     system answers ACK when ready, NAK when not [G 3.2].
//   - A data block is SOH, a header, STX, records, ETX and a BCC; a record
//     is a data identifier, US, data; records are separated by RS, the
//     last one ends at ETX [G 4.1, Z]. Header '1' is a call to pager [G
//     4.2]. The BCC is the modulo-2 sum (XOR) of every character of the
//     block after SOH, ETX included [G 4.1]. Records used: 1 call address,
//     2 display message, 3 beep coding, 6 priority ('1' normal, '2' high).
//   - The receiving station answers a block ACK, or NAK for a bad BCC or
//     corrupt characters; the sender sends it again, a bounded number of
//     times, and again after no answer within a timeout [A]. EOT ends the
//     transaction and returns control to the control station [G 3.3].
//
// The timeouts and the number of tries are not in the 1984 text as we
// read it; they are the Station's Config, with defaults in the range the
// vendors' manuals use.
package espa
