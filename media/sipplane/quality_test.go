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
