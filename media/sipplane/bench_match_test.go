package sipplane

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/trunkd/trunkd/trunk"
)

// BenchmarkRejectDecide is the plane's verdict on one INVITE to a REJECT
// trunk (listener.decide: match by source address, channel_limit,
// policy), with 1 trunk and with 100 000 trunks on the same bind, each
// with its own gateway_ip; the INVITE comes from the first trunk's
// gateway (the same address text in both). ns/op should not grow with the trunks (the match is indexed
// by source address, not a scan).
func BenchmarkRejectDecide(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("trunks=%d", n), func(b *testing.B) {
			p := &Plane{}
			trunks := make([]*live, n)
			for i := range trunks {
				trunks[i] = rejectLive(i)
			}
			p.table.Store(buildTable(trunks))
			l := &listener{p: p, key: trunks[0].bind}
			req := sip.NewRequest(sip.INVITE, sip.Uri{User: "agent", Host: "198.51.100.1", Port: 5060})
			req.SetSource(netip.AddrPortFrom(netip.MustParseAddr(trunks[0].t.GatewayIP), 5060).String())
			// the G.711 offer sipp's uac_reject.xml sends: a refused call's
			// offer is never parsed
			req.SetBody([]byte("v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
				"m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"))
			b.ReportAllocs()
			for b.Loop() {
				if v := l.decide(req); v.lv != trunks[0] || v.code != 603 {
					b.Fatalf("verdict %+v; want trunk %s, 603", v, trunks[0].t.TrunkID)
				}
			}
		})
	}
}

// rejectLive is the i-th REJECT trunk of BenchmarkRejectDecide.
func rejectLive(i int) *live {
	gw := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	t := trunk.Defaults()
	t.TrunkID = fmt.Sprintf("carrier-%06d", i)
	t.GatewayIP = gw.String()
	t.RejectIncomingCalls, t.RejectSIPCode = true, 603
	lv := &live{t: &t, bind: "127.0.0.1:5060", slots: &slots{}}
	lv.addrs.Store(&addrSet{gateway: []netip.Addr{gw}})
	return lv
}
