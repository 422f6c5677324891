package ws

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzAgentMessage feeds the decoder of agent messages, on the Twilio and
// L16 profiles, seeded from the golden conversations: it may refuse, never
// panic, and audio it accepts is whole samples.
func FuzzAgentMessage(f *testing.F) {
	for _, name := range []string{"twilio-docs.jsonl", "twilio-to-agent.jsonl", "v1-l16-to-agent.jsonl"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "ai", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			f.Add(l, false)
			f.Add(l, true)
		}
	}
	f.Add([]byte(`{"event":"media","media":{"payload":"AAE="}}`), true)
	f.Fuzz(func(t *testing.T, msg []byte, l16 bool) {
		a := &agent{}
		if l16 {
			a.proto, a.l16 = ProtoL16_8k, true
		}
		in, err := a.parse(msg)
		if err != nil {
			return
		}
		if in.Audio != nil && len(in.Audio) > len(msg) {
			t.Errorf("%d samples from a %d-byte message", len(in.Audio), len(msg))
		}
	})
}
