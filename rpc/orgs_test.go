package rpc_test

import (
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/rpc/rpctest"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control/controltest"
)

// orgClient dials s with a token for scope carrying org or orgs claims.
func orgClient(t *testing.T, s *rpctest.Server, scope, org string, orgs ...string) *rpc.Client {
	t.Helper()
	tok, err := auth.MintOrgToken(rpctest.Secret, scope, time.Hour, "", "", org, orgs)
	if err != nil {
		t.Fatal(err)
	}
	return s.Dial(t, tok)
}

func newTrunk(id string) *trunk.Trunk {
	tr := trunk.Defaults()
	tr.TrunkID = id
	return &tr
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if rpc.ErrorCode(err) != code {
		t.Errorf("%s = %v; want %s", what, err, code)
	}
}

// TestOrganizationsIsolated: two organizations share one trunkd without
// seeing each other's trunks; another organization's trunk is not found,
// never forbidden.
func TestOrganizationsIsolated(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	ctx := t.Context()
	acme := orgClient(t, s, rpc.ScopeManage, "acme")
	globex := orgClient(t, s, rpc.ScopeManage, "globex")
	admin := orgClient(t, s, auth.ScopeAdmin, "")
	personal := orgClient(t, s, rpc.ScopeManage, "", "acme", "globex")
	single := s.Dial(t, s.Token(t, rpc.ScopeManage)) // no org claim: the default organization

	if err := acme.AddTrunk(ctx, newTrunk("a1")); err != nil {
		t.Fatal(err)
	}
	if err := globex.AddTrunk(ctx, newTrunk("b1")); err != nil {
		t.Fatal(err)
	}
	if err := single.AddTrunk(ctx, newTrunk("d1")); err != nil {
		t.Fatal(err)
	}
	if r, err := acme.GetTrunkRecord(ctx, "a1"); err != nil || r.OrganizationID != "acme" || r.Record.OrganizationID != "acme" {
		t.Errorf("acme GetTrunk(a1) = %+v, %v; want organization acme", r, err)
	}
	if r, err := globex.GetTrunkRecord(ctx, "a1"); err != nil || r.Found {
		t.Errorf("globex GetTrunk(a1) = found %v, %v; want not found", r.Found, err)
	}
	wantCode(t, "globex UpdateTrunk(a1)", globex.UpdateTrunk(ctx, newTrunk("a1")), rpc.CodeInvalidTrunk)
	wantCode(t, "globex RemoveTrunk(a1)", globex.RemoveTrunk(ctx, "a1"), rpc.CodeInvalidTrunk)
	for _, c := range []struct {
		name string
		cl   *rpc.Client
		want []string
	}{
		{"acme", acme, []string{"a1"}},
		{"globex", globex, []string{"b1"}},
		{"default", single, []string{"d1"}},
		{"admin", admin, []string{"a1", "b1", "d1"}},
		{"admin for globex", admin.ForOrg("globex"), []string{"b1"}},
		{"personal for acme", personal.ForOrg("acme"), []string{"a1"}},
	} {
		list, _, err := c.cl.ListTrunks(ctx, "", 0)
		if got := trunkIDs(list); err != nil || !equal(got, c.want) {
			t.Errorf("%s ListTrunks = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	_, _, err := personal.ListTrunks(ctx, "", 0)
	if e, ok := err.(*rpc.Error); !ok || e.Code != rpc.CodeInvalidArgument || e.Field != "org" {
		t.Errorf("personal token naming no org = %v; want %s naming org", err, rpc.CodeInvalidArgument)
	}
	_, _, err = personal.ForOrg("initech").ListTrunks(ctx, "", 0)
	wantCode(t, "personal token for an org it lacks", err, rpc.CodePermissionDenied)
	_, _, err = acme.ForOrg("globex").ListTrunks(ctx, "", 0)
	wantCode(t, "acme key naming globex", err, rpc.CodePermissionDenied)
	other := newTrunk("a2")
	other.OrganizationID = "globex"
	err = acme.AddTrunk(ctx, other)
	if e, ok := err.(*rpc.Error); !ok || e.Field != "organization_id" {
		t.Errorf("acme AddTrunk for globex = %v; want %s naming organization_id", err, rpc.CodeInvalidArgument)
	}
	if err := personal.ForOrg("globex").AddTrunk(ctx, newTrunk("b2")); err != nil {
		t.Errorf("personal AddTrunk for globex = %v", err)
	}
	if r, _ := globex.GetTrunkRecord(ctx, "b2"); !r.Found {
		t.Error("globex does not see the trunk a personal token added for it")
	}
	if err := admin.RemoveTrunk(ctx, "a1"); err != nil {
		t.Errorf("admin RemoveTrunk(acme's a1) = %v", err)
	}
}

// TestManagedTrunks: a managed trunk is read-only to trunks:manage;
// trunks:admin creates, changes and removes it.
func TestManagedTrunks(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	ctx := t.Context()
	acme := orgClient(t, s, rpc.ScopeManage, "acme")
	admin := orgClient(t, s, auth.ScopeAdmin, "").ForOrg("acme")
	m := newTrunk("m1")
	m.ManagedAccountID = "acct-1"
	wantCode(t, "acme AddTrunk(managed)", acme.AddTrunk(ctx, m), rpc.CodeManagedTrunk)
	if err := admin.AddTrunk(ctx, m); err != nil {
		t.Fatal(err)
	}
	if r, err := acme.GetTrunkRecord(ctx, "m1"); err != nil || !r.Found || r.Record.ManagedAccountID != "acct-1" {
		t.Errorf("acme GetTrunk(m1) = %+v, %v; want it readable", r, err)
	}
	m.DisplayName = "changed"
	wantCode(t, "acme UpdateTrunk(managed)", acme.UpdateTrunk(ctx, m), rpc.CodeManagedTrunk)
	plain := newTrunk("m1")
	wantCode(t, "acme UpdateTrunk(managed → unmanaged)", acme.UpdateTrunk(ctx, plain), rpc.CodeManagedTrunk)
	wantCode(t, "acme RemoveTrunk(managed)", acme.RemoveTrunk(ctx, "m1"), rpc.CodeManagedTrunk)
	if err := admin.UpdateTrunk(ctx, m); err != nil {
		t.Errorf("admin UpdateTrunk(managed) = %v", err)
	}
	if err := admin.RemoveTrunk(ctx, "m1"); err != nil {
		t.Errorf("admin RemoveTrunk(managed) = %v", err)
	}
}

// TestListFilters: name, name prefix and time bounds select the page;
// a malformed bound is an error naming it.
func TestListFilters(t *testing.T) {
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st := controltest.NewMemStore()
	st.Now = func() time.Time { clock = clock.Add(time.Hour); return clock }
	s := rpctest.NewServer(t, rpctest.Options{Store: st})
	c := s.Dial(t, s.Token(t, rpc.ScopeManage))
	ctx := t.Context()
	for i, name := range []string{"sales-east", "sales-west", "support", "sales-east"} {
		tr := newTrunk(string(rune('a' + i)))
		tr.Name = name
		if err := c.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	} // created at 11:00, 12:00, 13:00, 14:00
	for _, tc := range []struct {
		req  rpc.ListTrunksRequest
		want []string
	}{
		{rpc.ListTrunksRequest{Name: "sales-east"}, []string{"a", "d"}},
		{rpc.ListTrunksRequest{NamePrefix: "sales-"}, []string{"a", "b", "d"}},
		{rpc.ListTrunksRequest{CreatedAfter: "2026-03-01T12:00:00Z"}, []string{"c", "d"}},
		{rpc.ListTrunksRequest{CreatedBefore: "2026-03-01T12:00:00Z"}, []string{"a"}},
		{rpc.ListTrunksRequest{UpdatedAfter: "2026-03-01T11:30:00Z", UpdatedBefore: "2026-03-01T13:30:00Z"}, []string{"b", "c"}},
		{rpc.ListTrunksRequest{NamePrefix: "sales-", Limit: 2}, []string{"a", "b"}},
		{rpc.ListTrunksRequest{NamePrefix: "sales-", Cursor: "b"}, []string{"d"}},
	} {
		resp, err := c.ListTrunksWhere(ctx, tc.req)
		if got := trunkIDs(resp.Trunks); err != nil || !equal(got, tc.want) {
			t.Errorf("ListTrunks(%+v) = %v, %v; want %v", tc.req, got, err, tc.want)
		}
	}
	_, err := c.ListTrunksWhere(ctx, rpc.ListTrunksRequest{CreatedAfter: "yesterday"})
	if e, ok := err.(*rpc.Error); !ok || e.Field != "created_after" {
		t.Errorf("ListTrunks(created_after=yesterday) = %v; want %s naming created_after", err, rpc.CodeInvalidArgument)
	}
}

// TestAllowedAddressesRules: entries are IPs or CIDRs; empty ones are
// stripped and an empty list is stored as null.
func TestAllowedAddressesRules(t *testing.T) {
	s := rpctest.NewServer(t, rpctest.Options{})
	c := s.Dial(t, s.Token(t, rpc.ScopeManage))
	ctx := t.Context()
	for _, bad := range []string{"10.0.0.0/33", "sip.example.com", "10.0.0.1/8/2", "fe80::1%eth0"} {
		tr := newTrunk("x")
		tr.AllowedAddresses = []string{bad}
		err := c.AddTrunk(ctx, tr)
		if e, ok := err.(*rpc.Error); !ok || e.Field != "allowed_addresses" {
			t.Errorf("AddTrunk(allowed_addresses [%q]) = %v; want %s naming allowed_addresses", bad, err, rpc.CodeInvalidArgument)
		}
	}
	tr := newTrunk("x")
	tr.AllowedAddresses = []string{"", " "}
	if err := c.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.GetTrunkRecord(ctx, "x"); r.Record.AllowedAddresses != nil {
		t.Errorf("allowed_addresses [\"\", \" \"] stored as %q; want null", r.Record.AllowedAddresses)
	}
}

func trunkIDs(l []rpc.TrunkConfig) []string {
	ids := []string{}
	for _, c := range l {
		ids = append(ids, c.TrunkID)
	}
	return ids
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
