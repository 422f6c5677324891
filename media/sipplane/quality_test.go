package sipplane

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"testing"
	"time"

	"github.com/trunkd/trunkd/trunk"
)

// TestMOSFromLossyJitteryRTP: the carrier sends 3 s of PCMU with every
// tenth packet missing and arrival times alternating ±5 ms; the MOS
// trunkd computes for the call is the E-model's for 10% loss and about
// 10 ms of jitter.
func TestMOSFromLossyJitteryRTP(t *testing.T) {
	c := newCarrier(t, answer)
	p := newDialPlane(t, Config{})
	apply(t, p, dialTrunkFor(t, "q", c))
	res := dial(t, p, trunk.DialRequest{TrunkID: "q", To: "100", Timeout: 5 * time.Second})
	if !res.Answered {
		t.Fatalf("Dial = %+v", res)
	}
	o, err := parseOffer(c.lastInvite().Body())
	if err != nil {
		t.Fatal(err)
	}
	to := &net.UDPAddr{IP: net.IP(o.addr.AsSlice()), Port: o.port}
	sent := sendRTP(t, c.rtp, to, 150, 10, 5*time.Millisecond)
	if err := p.Hangup(context.Background(), res.CallID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the call to end", func() bool { return len(p.ListCalls("q")) == 0 })
	st := p.TrunkStatus("q")
	want := trunk.MOS(0, 10*time.Millisecond, 10)
	t.Logf("MOS %.3f (E-model for 10%% loss, 10 ms jitter: %.3f)", st.MOS, want)
	if math.Abs(st.MOS-want) > 0.1 {
		t.Errorf("MOS = %.3f after %d of 150 packets with 10%% loss and ±5 ms jitter; want %.3f ± 0.1", st.MOS, sent, want)
	}
	if clean := trunk.MOS(0, 0, 0); st.MOS >= clean-0.5 {
		t.Errorf("MOS = %.3f is close to a clean call's %.3f", st.MOS, clean)
	}
}

// sendRTP sends n PCMU packets 20 ms apart from conn to to, skipping every
// lossEvery-th (from the fifth) and moving each send by ±jitter
// alternately. It returns how many it sent.
func sendRTP(t *testing.T, conn *net.UDPConn, to *net.UDPAddr, n, lossEvery int, jitter time.Duration) int {
	t.Helper()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // RTP v2, PCMU
	binary.BigEndian.PutUint32(pkt[8:], 0x5eed)
	start := time.Now()
	sent := 0
	for i := range n {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		if i%2 == 0 {
			at = at.Add(jitter)
		} else {
			at = at.Add(-jitter)
		}
		time.Sleep(time.Until(at))
		if i%lossEvery == 5 {
			continue
		}
		binary.BigEndian.PutUint16(pkt[2:], uint16(65500+i)) // wraps mid-call
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		if _, err := conn.WriteToUDP(pkt, to); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	return sent
}

// TestAllQualitySumsVisitsTrunksWithCalls: of two trunks, only the one
// with a call in its window is published; once its window has emptied it
// leaves the set the publisher visits, and a new call brings it back.
func TestAllQualitySumsVisitsTrunksWithCalls(t *testing.T) {
	c := newCarrier(t, reply(486))
	p := newDialPlane(t, Config{QualityWindow: 300 * time.Millisecond})
	apply(t, p, dialTrunkFor(t, "busy", c))
	apply(t, p, dialTrunkFor(t, "idle", c))
	if got := p.AllQualitySums(); len(got) != 0 {
		t.Fatalf("AllQualitySums before any call = %v; want none", got)
	}
	dial(t, p, trunk.DialRequest{TrunkID: "busy", To: "100", Timeout: time.Second})
	got := p.AllQualitySums()
	if len(got) != 1 || got["busy"].Attempted != 1 {
		t.Fatalf("AllQualitySums after one call on busy = %v; want busy with 1 attempt", got)
	}
	waitFor(t, "the window to empty", func() bool { return len(p.AllQualitySums()) == 0 })
	if n := len(p.withCalls.list()); n != 0 {
		t.Errorf("%d trunks still visited after their windows emptied; want 0", n)
	}
	dial(t, p, trunk.DialRequest{TrunkID: "busy", To: "100", Timeout: time.Second})
	if got := p.AllQualitySums(); got["busy"].Attempted != 1 {
		t.Errorf("AllQualitySums after a new call on busy = %v; want busy with 1 attempt", got)
	}
	p.Remove("busy")
	if got := p.AllQualitySums(); len(got) != 0 {
		t.Errorf("AllQualitySums after busy was removed = %v; want none", got)
	}
}

// TestProbeLoopLooksAtTrippedTrunks: without keepalives the probe loop
// looks only at trunks whose breaker is tripped, and forgets a trunk once
// it is removed.
func TestProbeLoopLooksAtTrippedTrunks(t *testing.T) {
	c := newCarrier(t, answer)
	p := newDialPlane(t, Config{})
	for _, id := range []string{"a", "b", "c"} {
		apply(t, p, dialTrunkFor(t, id, c))
	}
	if got := p.probeTargets(); len(got) != 0 {
		t.Fatalf("probe targets with every breaker closed = %d; want 0", len(got))
	}
	p.healthOf("b").breaker.OpenFor(time.Hour)
	got := p.probeTargets()
	if len(got) != 1 || got[0].t.TrunkID != "b" {
		t.Fatalf("probe targets with b's breaker open = %d trunks; want b alone", len(got))
	}
	p.Remove("b")
	if got := p.probeTargets(); len(got) != 0 {
		t.Errorf("probe targets after b was removed = %d; want 0", len(got))
	}
	if n := len(p.tripped.list()); n != 0 {
		t.Errorf("tripped set after b was removed holds %d; want 0", n)
	}
}
