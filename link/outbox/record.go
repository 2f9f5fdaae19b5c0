package outbox

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Segment record layout (little endian):
//
//	len     uint32  length of the body that follows crc
//	crc     uint32  CRC-32C over the 4 len bytes and the body
//	body:
//	  id       uint64
//	  flags    uint8   bit 0: retained; other bits must be zero
//	  topiclen uint16
//	  topic    [topiclen]byte, non-empty
//	  payload  [len-11-topiclen]byte
const (
	recHeader    = 8
	recFixedBody = 8 + 1 + 2
	// MaxPayload is the largest payload Append accepts.
	MaxPayload = 16 << 20
	// MaxTopic is the largest topic Append accepts, in bytes (MQTT's limit).
	MaxTopic = 1<<16 - 1
	maxBody  = recFixedBody + MaxTopic + MaxPayload

	flagRetained = 1 << 0
)

// Ack record layout: magic 0xA5 | id uint64 | CRC-32C of the first 9 bytes.
const (
	ackMagic = 0xA5
	ackSize  = 1 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errShort   = errors.New("record extends past end of data")
	errBadLen  = errors.New("record length out of range")
	errBadCRC  = errors.New("record checksum mismatch")
	errBadBody = errors.New("record body malformed")
)

// recordSize is the encoded size of a record with the given topic and payload lengths.
func recordSize(topicLen, payloadLen int) int64 {
	return int64(recHeader + recFixedBody + topicLen + payloadLen)
}

// appendRecord appends the encoding of e to dst.
func appendRecord(dst []byte, e Entry) []byte {
	bodyLen := recFixedBody + len(e.Topic) + len(e.Payload)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyLen))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc placeholder
	dst = binary.LittleEndian.AppendUint64(dst, e.ID)
	var flags byte
	if e.Retained {
		flags |= flagRetained
	}
	dst = append(dst, flags)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(e.Topic)))
	dst = append(dst, e.Topic...)
	dst = append(dst, e.Payload...)
	rec := dst[start:]
	crc := crc32.Update(crc32.Checksum(rec[0:4], castagnoli), castagnoli, rec[recHeader:])
	binary.LittleEndian.PutUint32(rec[4:8], crc)
	return dst
}

// decodeRecord decodes the record at the start of b and returns it with its
// encoded length. The returned payload aliases b.
func decodeRecord(b []byte) (Entry, int, error) {
	if len(b) < recHeader {
		return Entry{}, 0, errShort
	}
	bodyLen := binary.LittleEndian.Uint32(b[0:4])
	if bodyLen < recFixedBody+1 || bodyLen > maxBody {
		return Entry{}, 0, errBadLen
	}
	n := recHeader + int(bodyLen)
	if len(b) < n {
		return Entry{}, 0, errShort
	}
	body := b[recHeader:n]
	crc := crc32.Update(crc32.Checksum(b[0:4], castagnoli), castagnoli, body)
	if crc != binary.LittleEndian.Uint32(b[4:8]) {
		return Entry{}, 0, errBadCRC
	}
	id := binary.LittleEndian.Uint64(body[0:8])
	flags := body[8]
	topicLen := int(binary.LittleEndian.Uint16(body[9:11]))
	if id == 0 || flags&^flagRetained != 0 || topicLen == 0 || recFixedBody+topicLen > len(body) {
		return Entry{}, 0, errBadBody
	}
	return Entry{
		ID:       id,
		Topic:    string(body[recFixedBody : recFixedBody+topicLen]),
		Payload:  body[recFixedBody+topicLen:],
		Retained: flags&flagRetained != 0,
	}, n, nil
}

func appendAck(dst []byte, id uint64) []byte {
	start := len(dst)
	dst = append(dst, ackMagic)
	dst = binary.LittleEndian.AppendUint64(dst, id)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeAck decodes the ack record at the start of b.
func decodeAck(b []byte) (uint64, bool) {
	if len(b) < ackSize || b[0] != ackMagic {
		return 0, false
	}
	if crc32.Checksum(b[:9], castagnoli) != binary.LittleEndian.Uint32(b[9:13]) {
		return 0, false
	}
	id := binary.LittleEndian.Uint64(b[1:9])
	return id, id != 0
}
