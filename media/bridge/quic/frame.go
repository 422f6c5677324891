package quic

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ALPN is the protocol trunkd offers in the TLS handshake.
const ALPN = "trunkd-ai/1"

// Frame types on the stream.
const (
	FrameJSON  byte = 0 // a UTF-8 JSON event
	FrameAudio byte = 1 // agent audio: L16 little-endian, 8 kHz mono
)

// MaxFrame bounds a stream frame: 1 MiB, as the WebSocket read limit.
const MaxFrame = 1 << 20

// Datagram header: type 0x01, a reserved zero byte, the sequence number
// (u16, big-endian) and the RTP-derived timestamp in samples (u32,
// big-endian), then the L16 payload.
const (
	DatagramAudio  byte = 0x01
	DatagramHeader int  = 8
)

// Close codes of the connection (QUIC application error codes).
const (
	CloseNormal       = 0 // the call ended
	CloseHangup       = 1 // the agent hangs up
	CloseUnauthorized = 2 // the agent refuses the credentials
	CloseProtocol     = 3 // a frame could not be understood
)

// WriteFrame writes one frame: uvarint(len(payload)+1), type, payload.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	var hdr [binary.MaxVarintLen64 + 1]byte
	n := binary.PutUvarint(hdr[:], uint64(len(payload)+1))
	hdr[n] = typ
	b := make([]byte, 0, n+1+len(payload))
	b = append(append(b, hdr[:n+1]...), payload...)
	_, err := w.Write(b)
	return err
}

// errFrame is a frame over MaxFrame or empty.
var errFrame = errors.New("malformed frame")

// ReadFrame reads one frame.
func ReadFrame(r *bufio.Reader) (byte, []byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 || n > MaxFrame+1 {
		return 0, nil, fmt.Errorf("%w: length %d", errFrame, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// Datagram builds a caller-audio datagram.
func Datagram(seq uint16, ts uint32, l16 []byte) []byte {
	b := make([]byte, DatagramHeader, DatagramHeader+len(l16))
	b[0] = DatagramAudio
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	return append(b, l16...)
}

// ParseDatagram reads a caller-audio datagram.
func ParseDatagram(b []byte) (seq uint16, ts uint32, l16 []byte, err error) {
	if len(b) < DatagramHeader || b[0] != DatagramAudio || (len(b)-DatagramHeader)%2 != 0 {
		return 0, 0, nil, errFrame
	}
	return binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:]), b[DatagramHeader:], nil
}

// L16 encodes PCM as little-endian bytes.
func L16(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

// PCM decodes little-endian L16 bytes.
func PCM(b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return nil, errors.New("L16 audio of an odd number of bytes")
	}
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return pcm, nil
}
