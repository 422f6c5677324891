package rpctest_test

import (
	"slices"
	"testing"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/rpctest"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

func TestNewServer(t *testing.T) {
	plane := &controltest.Plane{Calls: controltest.NewFakeCalls(map[string]string{"c1": controltest.TrunkOK})}
	s := rpctest.NewServer(t, rpctest.Options{Plane: plane})
	c := s.Dial(t, s.Token(t, rpc.ScopeManage))
	tr := trunk.Defaults()
	tr.TrunkID = "c1"
	tr.RejectSIPCode = 200
	if err := c.AddTrunk(t.Context(), &tr); rpc.ErrorCode(err) != rpc.CodeInvalidArgument {
		t.Errorf("AddTrunk with reject_sip_code 200 = %v; want %s (validated as in production)", err, rpc.CodeInvalidArgument)
	}
	tr.RejectSIPCode = 603
	if err := c.AddTrunk(t.Context(), &tr); err != nil {
		t.Fatalf("AddTrunk = %v", err)
	}
	if got := plane.Events(); !slices.Equal(got, []string{"prepare c1", "commit c1"}) {
		t.Errorf("plane events = %q; want the invalid add refused before prepare, then prepare and commit c1", got)
	}
	res, err := c.Dial(t.Context(), rpc.DialRequest{TrunkID: "c1", To: "100"})
	if err != nil || !res.Answered {
		t.Errorf("Dial = %+v, %v; want answered", res, err)
	}
}
