package quic

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/trunkd/trunkd/media/bridge"
)

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	for _, f := range []struct {
		typ byte
		p   []byte
	}{{FrameJSON, []byte(`{"event":"clear"}`)}, {FrameAudio, L16([]int16{1, -1, 32767, -32768})}, {FrameJSON, nil}} {
		if err := WriteFrame(&b, f.typ, f.p); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&b)
	typ, p, err := ReadFrame(r)
	if err != nil || typ != FrameJSON || string(p) != `{"event":"clear"}` {
		t.Fatalf("frame 1 = %d %q %v", typ, p, err)
	}
	typ, p, err = ReadFrame(r)
	pcm, _ := PCM(p)
	if err != nil || typ != FrameAudio || !slices.Equal(pcm, []int16{1, -1, 32767, -32768}) {
		t.Fatalf("frame 2 = %d %v %v", typ, pcm, err)
	}
	if typ, p, err = ReadFrame(r); err != nil || typ != FrameJSON || len(p) != 0 {
		t.Fatalf("frame 3 = %d %q %v", typ, p, err)
	}
}

func TestHostileFrames(t *testing.T) {
	huge := binary.AppendUvarint(nil, MaxFrame+2)
	if _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(huge))); err == nil {
		t.Error("a frame over MaxFrame was accepted")
	}
	if _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0}))); err == nil {
		t.Error("an empty frame was accepted")
	}
	for _, f := range []struct {
		typ byte
		p   string
	}{{7, "x"}, {FrameJSON, "{nope"}, {FrameAudio, "odd"}, {FrameJSON, `{"event":"media","media":{"payload":"!!"}}`}} {
		if in, err := parse(f.typ, []byte(f.p)); err == nil {
			t.Errorf("parse(%d, %q) = %+v; want an error", f.typ, f.p, in)
		}
	}
	if in, err := parse(FrameJSON, []byte(`{"event":"future"}`)); err != nil || in.Kind != bridge.InIgnored {
		t.Errorf("unknown event = %+v, %v; want ignored", in, err)
	}
}

func TestDatagram(t *testing.T) {
	seq, ts, l16, err := ParseDatagram(Datagram(7, 1600, L16([]int16{5, 6})))
	if err != nil || seq != 7 || ts != 1600 || !bytes.Equal(l16, L16([]int16{5, 6})) {
		t.Errorf("datagram = %d %d %v %v", seq, ts, l16, err)
	}
	if _, _, _, err := ParseDatagram([]byte{2, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("a datagram of another type was accepted")
	}
}

// FuzzAgentFrame feeds the agent's stream decoder: it may refuse, never
// panic.
func FuzzAgentFrame(f *testing.F) {
	var b bytes.Buffer
	_ = WriteFrame(&b, FrameJSON, []byte(`{"event":"mark","mark":{"name":"a"}}`))
	_ = WriteFrame(&b, FrameAudio, L16([]int16{1, 2}))
	f.Add(b.Bytes())
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			typ, p, err := ReadFrame(r)
			if err != nil {
				return
			}
			_, _ = parse(typ, p)
		}
	})
}
