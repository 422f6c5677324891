package rpc

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/trunk"
)

// pageOf is a page of n trunks with varied fields and statuses.
func pageOf(n int, records bool) *api.TrunkPage {
	p := &api.TrunkPage{Records: records, NextCursor: fmt.Sprintf("next-%d", n)}
	for i := range n {
		t := trunk.Defaults()
		t.TrunkID = fmt.Sprintf("carrier-%05d", i)
		t.DisplayName = fmt.Sprintf("Carrier %d «ü»", i)
		t.Domain = "sip.example"
		t.SIPPassword = "secret"
		t.OrganizationID = []string{"", "acme"}[i%2]
		t.Meta = trunk.Meta{Revision: uint64(i + 1), CreatedAt: time.Unix(int64(1e9+i), 0).UTC()}
		p.Trunks = append(p.Trunks, &t)
	}
	p.Statuses = func(ids []string, out []trunk.Status) {
		for i, id := range ids {
			out[i] = trunk.Status{}
			out[i].SIP.State = trunk.SIPActive
			out[i].SIP.ActiveCalls = uint32(len(id))
			out[i].Quality.ASR = 0.5
		}
	}
	return p
}

// A page written while it is built holds the bytes of the whole answer,
// in chunks of at least pageChunk bytes but the last.
func TestWritePageMatchesResponse(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100, 1000} {
		for _, records := range []bool{false, true} {
			p := pageOf(n, records)
			var got bytes.Buffer
			var sizes []int
			e := encoders.Get().(*encoder)
			err := writePage(e, p, func(b []byte) { got.Write(b); sizes = append(sizes, len(b)) })
			encoders.Put(e)
			if err != nil {
				t.Fatal(err)
			}
			want := encodeResponse("Ok", p.Response())
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("%d trunks, records %v: the page written in chunks differs from the answer encoded whole", n, records)
			}
			for i, s := range sizes[:len(sizes)-1] {
				if s < pageChunk {
					t.Fatalf("%d trunks: chunk %d of %d holds %d bytes", n, i, len(sizes), s)
				}
			}
			if n == 1000 && len(sizes) < 10 {
				t.Fatalf("a page of 1000 went in %d chunks", len(sizes))
			}
		}
	}
}
