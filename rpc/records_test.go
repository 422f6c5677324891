package rpc_test

import (
	"testing"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/rpctest"
	"github.com/trunkd/trunkd/trunk"
)

// TestReadModifyWrite is the safe edit over real QUIC: GetTrunk returns the
// whole record without secret values, the record sent back with
// if_revision and keep_secrets changes one field and keeps the others and
// the secrets, and a second write naming the old revision is ERR_CONFLICT
// and changes nothing.
func TestReadModifyWrite(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	c := s.Dial(t, s.Token(t, rpc.ScopeManage))
	ctx := t.Context()
	tr := trunk.Defaults()
	tr.TrunkID, tr.Domain, tr.GatewayIP, tr.ChannelLimit = "c1", "sip.example.com", "192.0.2.10", 7
	tr.SIPUsername, tr.SIPPassword, tr.MediaIPCIDRs = "acme", "s3cret", []string{"192.0.2.0/24"}
	if err := c.AddTrunk(ctx, &tr); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetTrunkRecord(ctx, "c1")
	if err != nil || !got.Found || got.Record == nil {
		t.Fatalf("GetTrunkRecord = %+v, %v", got, err)
	}
	if got.Record.Trunk.SIPPassword != "" || !got.Record.SIPPasswordSet || got.Record.APIBearerTokenSet {
		t.Errorf("record secrets: password %q, set %v, token set %v; want no value, true, false",
			got.Record.Trunk.SIPPassword, got.Record.SIPPasswordSet, got.Record.APIBearerTokenSet)
	}
	if got.Revision == 0 || got.CreatedAt == "" || got.UpdatedAt != got.CreatedAt {
		t.Errorf("revision %d, created %q, updated %q; want a revision and equal timestamps", got.Revision, got.CreatedAt, got.UpdatedAt)
	}
	edit := got.Record.Trunk
	edit.DisplayName = "Renamed"
	err = c.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{IfRevision: got.Revision, KeepSecrets: true, Trunk: edit})
	if err != nil {
		t.Fatalf("UpdateTrunk(if_revision, keep_secrets) = %v", err)
	}
	after, _ := c.GetTrunkRecord(ctx, "c1")
	want := tr
	want.DisplayName = "Renamed"
	want.SIPPassword = ""
	if after.Record.Trunk.Meta = (trunk.Meta{}); !equalTrunks(after.Record.Trunk, want) || !after.Record.SIPPasswordSet {
		t.Errorf("after the edit = %+v\nwant %+v with the password kept", after.Record.Trunk, want)
	}
	if after.Revision == got.Revision || after.CreatedAt != got.CreatedAt {
		t.Errorf("after the edit: revision %d (was %d), created %q (was %q)", after.Revision, got.Revision, after.CreatedAt, got.CreatedAt)
	}
	edit.DisplayName = "Lost update"
	err = c.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{IfRevision: got.Revision, KeepSecrets: true, Trunk: edit})
	if rpc.ErrorCode(err) != rpc.CodeConflict {
		t.Errorf("UpdateTrunk(stale if_revision) = %v; want %s", err, rpc.CodeConflict)
	}
	if err := c.RemoveTrunkIf(ctx, "c1", got.Revision); rpc.ErrorCode(err) != rpc.CodeConflict {
		t.Errorf("RemoveTrunk(stale if_revision) = %v; want %s", err, rpc.CodeConflict)
	}
	if now, _ := c.GetTrunkRecord(ctx, "c1"); now.Record.DisplayName != "Renamed" || now.Revision != after.Revision {
		t.Errorf("after refused writes: %q at %d; want Renamed at %d", now.Record.DisplayName, now.Revision, after.Revision)
	}
	// Without keep_secrets the record is replaced whole, as in v1.
	if err := c.WriteTrunk(ctx, "UpdateTrunk", rpc.TrunkRequest{Trunk: edit}); err != nil {
		t.Fatal(err)
	}
	if now, _ := c.GetTrunkRecord(ctx, "c1"); now.Record.SIPPasswordSet {
		t.Error("an update without keep_secrets and without sip_password kept the password; want it cleared (v1 semantics)")
	}
	if err := c.RemoveTrunkIf(ctx, "c1", 0); err != nil {
		t.Errorf("RemoveTrunk(if_revision 0) = %v", err)
	}
	if err := c.WriteTrunk(ctx, "AddTrunk", rpc.TrunkRequest{IfRevision: 5, Trunk: tr}); rpc.ErrorCode(err) != rpc.CodeConflict {
		t.Errorf("AddTrunk(if_revision 5) = %v; want %s", err, rpc.CodeConflict)
	}
}

func equalTrunks(a, b trunk.Trunk) bool {
	return a.String() == b.String() && a.DisplayName == b.DisplayName && a.ChannelLimit == b.ChannelLimit &&
		a.SIPUsername == b.SIPUsername && a.SIPPassword == b.SIPPassword && len(a.MediaIPCIDRs) == len(b.MediaIPCIDRs)
}
