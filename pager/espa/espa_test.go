package espa_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roomd/roomd/pager/espa"
	"github.com/roomd/roomd/pager/espatest"
)

// The call-to-pager block of the Zenitel wiki's example, with its BCC
// computed by hand: XOR of '1' STX ... ETX.
func TestEncodeMatchesThePublishedExample(t *testing.T) {
	blk := espa.Block{Header: espa.HeaderCallToPager, Records: []espa.Record{
		{"1", "550"}, {"2", "CALL ME 101"}, {"3", "3"}, {"4", "3"}, {"5", "3"}, {"6", "3"}}}
	got := blk.Encode()
	want := []byte{0x01, 0x31, 0x02, 0x31, 0x1F, 0x35, 0x35, 0x30, 0x1E, 0x32, 0x1F, 0x43, 0x41, 0x4C, 0x4C, 0x20,
		0x4D, 0x45, 0x20, 0x31, 0x30, 0x31, 0x1E, 0x33, 0x1F, 0x33, 0x1E, 0x34, 0x1F, 0x33, 0x1E, 0x35, 0x1F, 0x33,
		0x1E, 0x36, 0x1F, 0x33, 0x03}
	require.Equal(t, want, got[:len(got)-1])
	var x byte
	for _, c := range want[1:] {
		x ^= c
	}
	assert.Equal(t, x, got[len(got)-1])
	// With the BCC the longitudinal parity of the block after SOH is even.
	assert.Zero(t, espa.BCC(got[1:]))
	back, err := espa.DecodeBlock(got)
	require.NoError(t, err)
	assert.Equal(t, blk, back)
}

func TestEncodeCall(t *testing.T) {
	b, err := espa.EncodeCall(espa.Call{Address: "101", Message: "PANIC room-3 bed", Priority: espa.PriorityHigh})
	require.NoError(t, err)
	assert.Equal(t, "\x011\x021\x1f101\x1e2\x1fPANIC room-3 bed\x1e6\x1f2\x03", string(b[:len(b)-1]))

	for _, c := range []espa.Call{
		{Address: "", Message: "x", Priority: espa.PriorityHigh},
		{Address: "12a", Message: "x", Priority: espa.PriorityHigh},
		{Address: "12345678901234567", Message: "x", Priority: espa.PriorityHigh},
		{Address: "1", Message: "caffè", Priority: espa.PriorityHigh},
		{Address: "1", Message: "a\x03b", Priority: espa.PriorityHigh},
		{Address: "1", Message: "x", Priority: 3},
		{Address: "1", Message: string(bytes.Repeat([]byte("x"), espa.MaxMessage+1)), Priority: espa.PriorityNormal},
	} {
		_, err := espa.EncodeCall(c)
		assert.Error(t, err, "%+v", c)
	}
}

func TestDecodeRefusesABadBCC(t *testing.T) {
	b, err := espa.EncodeCall(espa.Call{Address: "7", Message: "x", Priority: espa.PriorityNormal})
	require.NoError(t, err)
	b[len(b)-1] ^= 1
	_, err = espa.DecodeBlock(b)
	assert.ErrorIs(t, err, espa.ErrBCC)
}

// line opens a pseudo-terminal pair: the station on the tty side, opened
// and configured as a real serial port is, and the simulated paging
// system on the master side.
func line(t *testing.T, cfg espa.Config) (*espa.Station, *espatest.Sim) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	port, err := espa.OpenSerial(tty.Name(), espa.DefaultSerial)
	require.NoError(t, err)
	tty.Close()
	sim := espatest.Start(ptmx)
	t.Cleanup(func() {
		port.Close()
		ptmx.Close()
		<-sim.Done()
	})
	st, err := espa.NewStation(port, cfg, nil)
	require.NoError(t, err)
	return st, sim
}

var fast = espa.Config{ReplyTimeout: 200 * time.Millisecond, BlockTimeout: 500 * time.Millisecond}

func TestOpenSerialRefusesWhatIsNotATty(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	require.NoError(t, err)
	f.Close()
	_, err = espa.OpenSerial(f.Name(), espa.DefaultSerial)
	assert.ErrorContains(t, err, "termios")
	_, err = espa.OpenSerial(f.Name(), espa.Serial{Baud: 1234, DataBits: 7, Parity: espa.ParityEven, StopBits: 2})
	assert.ErrorContains(t, err, "baud 1234")
}

func TestPollAndSend(t *testing.T) {
	st, sim := line(t, fast)
	blk, err := st.Poll()
	require.NoError(t, err)
	assert.Nil(t, blk)
	assert.Equal(t, 1, sim.Polls())

	require.NoError(t, st.Send(espa.Call{Address: "101", Message: "PANIC room-3 bed", Priority: espa.PriorityHigh}))
	calls := sim.WaitCalls(1, time.Second)
	require.Len(t, calls, 1)
	assert.Equal(t, "1", calls[0].Header)
	assert.Equal(t, "101", calls[0].Address)
	assert.Equal(t, "PANIC room-3 bed", calls[0].Message)
	assert.Equal(t, "2", calls[0].Priority)
}

func TestPollReceivesAStatusBlock(t *testing.T) {
	st, sim := line(t, fast)
	sim.SendStatus("1")
	blk, err := st.Poll()
	require.NoError(t, err)
	require.NotNil(t, blk)
	assert.Equal(t, espa.HeaderStatusInfo, blk.Header)
	v, _ := blk.Get("7")
	assert.Equal(t, "1", v)
	// The link is usable again afterwards.
	require.NoError(t, st.Send(espa.Call{Address: "5", Message: "x", Priority: espa.PriorityNormal}))
}

func TestACorruptedBlockIsSentAgain(t *testing.T) {
	st, sim := line(t, fast)
	sim.CorruptNext(2)
	require.NoError(t, st.Send(espa.Call{Address: "101", Message: "PANIC room-3 bed", Priority: espa.PriorityHigh}))
	assert.Equal(t, 2, sim.BadBlocks())
	require.Len(t, sim.Calls(), 1)
}

func TestABlockNeverTakenIsGivenUp(t *testing.T) {
	st, sim := line(t, fast)
	sim.CorruptNext(3)
	err := st.Send(espa.Call{Address: "101", Message: "x", Priority: espa.PriorityHigh})
	assert.ErrorIs(t, err, espa.ErrRefused)
	assert.ErrorContains(t, err, "call 101 via paging system 2")
	assert.Empty(t, sim.Calls())
}

func TestARefusedSelectionIsTriedAgain(t *testing.T) {
	st, sim := line(t, fast)
	sim.RefuseNext(2)
	require.NoError(t, st.Send(espa.Call{Address: "9", Message: "x", Priority: espa.PriorityNormal}))
	require.Len(t, sim.Calls(), 1)
}

func TestASilentPagingSystemIsNoAnswer(t *testing.T) {
	st, sim := line(t, fast)
	sim.SetSilent(true)
	_, err := st.Poll()
	assert.ErrorIs(t, err, espa.ErrNoAnswer)
	err = st.Send(espa.Call{Address: "9", Message: "x", Priority: espa.PriorityNormal})
	assert.ErrorIs(t, err, espa.ErrNoAnswer)
	assert.True(t, errors.Is(err, espa.ErrNoAnswer))
	sim.SetSilent(false)
	_, err = st.Poll()
	require.NoError(t, err)
	require.NoError(t, st.Send(espa.Call{Address: "9", Message: "x", Priority: espa.PriorityNormal}))
}

func TestConfigValidate(t *testing.T) {
	assert.ErrorContains(t, espa.Config{Own: '1', Peer: '1'}.WithDefaults().Validate(), "both")
	assert.ErrorContains(t, espa.Config{Own: 'a', Peer: '2'}.WithDefaults().Validate(), "own address")
	assert.NoError(t, espa.Config{}.WithDefaults().Validate())
	assert.Equal(t, "9600 7E2", espa.DefaultSerial.String())
}
