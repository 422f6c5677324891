package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/trunkd/trunkd/rpc/auth"
	"github.com/trunkd/trunkd/rpc/rest"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// raw sends body as it is, with the extra headers hdr.
func (f *fixture) raw(t *testing.T, method, path, tok string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

func orgToken(t *testing.T, scope, org string, orgs ...string) string {
	t.Helper()
	tok, err := auth.MintOrgToken(secret, scope, time.Hour, "", "", org, orgs)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const byocBody = `{"name": "Twilio EU",
 "inbound_config": {"enable_noise_cancellation": false, "media_encryption": "DISABLE", "allowed_addresses": ["54.172.60.0/30", "", "2001:db8::1"]},
 "outbound_config": {"address": "acme.pstn.twilio.com:5080", "auth_username": "acme", "auth_password": "s3cret", "transport": "UDP", "media_encryption": "DISABLE"}}`

// TestCoreLifecycle is what a curl user of the BYOC page does: create
// (server-generated id), list, read, replace, delete, with its bodies and
// status codes; the password never comes back.
func TestCoreLifecycle(t *testing.T) {
	f := newFixture(t)
	tok := token(t, auth.ScopeManage)
	status, hdr, body := f.raw(t, "POST", "/core/trunks", tok, nil, []byte(byocBody))
	var c rest.CoreTrunk
	if status != http.StatusCreated || json.Unmarshal(body, &c) != nil || !strings.HasPrefix(c.ID, "trk_") {
		t.Fatalf("POST /core/trunks = %d %s; want 201 with a trk_ id", status, body)
	}
	if hdr.Get("Location") != "/core/trunks/"+c.ID || bytes.Contains(body, []byte("s3cret")) {
		t.Errorf("POST /core/trunks: Location %q, body %s; want the trunk's path and no password", hdr.Get("Location"), body)
	}
	if c.Name != "Twilio EU" || c.OrganizationID != "default" || c.ManagedAccountID != nil || c.CreatedAt == "" ||
		!slices.Equal(c.InboundConfig.AllowedAddresses, []string{"54.172.60.0/30", "2001:db8::1"}) ||
		c.OutboundConfig == nil || c.OutboundConfig.Address != "acme.pstn.twilio.com:5080" || c.OutboundConfig.Transport != "UDP" {
		t.Errorf("created trunk = %s", body)
	}
	stored := f.store.Trunk(c.ID)
	if stored.GatewayIP != "acme.pstn.twilio.com" || stored.DestinationSBCPort != 5080 || stored.SIPPassword != "s3cret" {
		t.Errorf("stored = gateway %q port %d password set %v", stored.GatewayIP, stored.DestinationSBCPort, stored.SIPPassword != "")
	}
	status, _, body = f.raw(t, "GET", "/core/trunks?name=Twilio+EU", tok, nil, nil)
	var l rest.CoreList
	if status != http.StatusOK || json.Unmarshal(body, &l) != nil || len(l.Trunks) != 1 || l.Trunks[0].ID != c.ID {
		t.Errorf("GET /core/trunks?name= = %d %s; want the trunk", status, body)
	}
	// A native field set meanwhile survives a BYOC PUT.
	stored.ChannelLimit = 9
	f.do(t, "PUT", "/v1/trunks/"+c.ID+"?keep_secrets=true", tok, stored)
	put := `{"name": "Twilio US", "inbound_config": {"allowed_addresses": []}}`
	status, _, body = f.raw(t, "PUT", "/core/trunks/"+c.ID, tok, nil, []byte(put))
	if status != http.StatusOK || json.Unmarshal(body, &c) != nil || c.Name != "Twilio US" || c.OutboundConfig != nil || c.InboundConfig.AllowedAddresses != nil {
		t.Errorf("PUT /core/trunks/%s = %d %s; want 200, renamed, no outbound, allowed_addresses null", c.ID, status, body)
	}
	if got := f.store.Trunk(c.ID); got.ChannelLimit != 9 {
		t.Errorf("channel_limit after a BYOC PUT = %d; want 9 kept", got.ChannelLimit)
	}
	if status, _, body = f.raw(t, "DELETE", "/core/trunks/"+c.ID, tok, nil, nil); status != http.StatusNoContent {
		t.Errorf("DELETE = %d %s; want 204", status, body)
	}
	status, _, body = f.raw(t, "GET", "/core/trunks/"+c.ID, tok, nil, nil)
	wantError(t, "GET deleted", status, body, http.StatusNotFound, api.CodeInvalidTrunk, "")
}

// TestCoreRefusals: bad input gets a clear error naming the field and
// changes nothing.
func TestCoreRefusals(t *testing.T) {
	f := newFixture(t)
	tok := token(t, auth.ScopeManage)
	out := `"outbound_config": {"address": "192.0.2.1", "auth_username": "u", "auth_password": "p"`
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"malformed JSON", `{"name": `, 400, api.CodeMalformed, ""},
		{"unknown field", `{"name": "x", "colour": "red"}`, 400, api.CodeInvalidArgument, "colour"},
		{"no name", `{}`, 400, api.CodeInvalidArgument, "name"},
		{"transport lower case", `{"name": "x", ` + out + `, "transport": "tls"}}`, 400, api.CodeInvalidArgument, "outbound_config.transport"},
		{"transport unknown", `{"name": "x", ` + out + `, "transport": "SCTP"}}`, 400, api.CodeInvalidArgument, "outbound_config.transport"},
		{"media encryption unknown", `{"name": "x", "inbound_config": {"media_encryption": "DTLS"}}`, 400, api.CodeInvalidArgument, "inbound_config.media_encryption"},
		{"media encryption lower case", `{"name": "x", ` + out + `, "media_encryption": "disable"}}`, 400, api.CodeInvalidArgument, "outbound_config.media_encryption"},
		{"noise cancellation not a bool", `{"name": "x", "inbound_config": {"enable_noise_cancellation": "yes"}}`, 400, api.CodeInvalidArgument, "inbound_config.enable_noise_cancellation"},
		{"no password", `{"name": "x", "outbound_config": {"address": "192.0.2.1", "auth_username": "u"}}`, 400, api.CodeInvalidArgument, "outbound_config.auth_password"},
		{"address as URI", `{"name": "x", "outbound_config": {"address": "sip:192.0.2.1", "auth_username": "u", "auth_password": "p"}}`, 400, api.CodeInvalidArgument, "outbound_config.address"},
		{"bad CIDR", `{"name": "x", "inbound_config": {"allowed_addresses": ["10.0.0.0/40"]}}`, 400, api.CodeInvalidArgument, "inbound_config.allowed_addresses"},
		{"wrong type", `{"name": "x", "inbound_config": {"allowed_addresses": "10.0.0.1"}}`, 400, api.CodeInvalidArgument, "inbound_config.allowed_addresses"},
		{"huge body", `{"name": "` + strings.Repeat("x", rest.DefaultMaxBodySize) + `"}`, 413, api.CodeTooLarge, ""},
	} {
		status, _, body := f.raw(t, "POST", "/core/trunks", tok, nil, []byte(tc.body))
		wantError(t, tc.name, status, body, tc.status, tc.code, tc.field)
	}
	if n := f.store.Len(); n != 0 {
		t.Errorf("refused requests stored %d trunks", n)
	}
	status, _, body := f.raw(t, "POST", "/core/trunks", orgToken(t, auth.ScopeManage, "acme"), map[string]string{rest.OrgHeader: "globex"}, []byte(`{"name": "x"}`))
	wantError(t, "wrong org header", status, body, http.StatusForbidden, api.CodePermissionDenied, "")
	status, _, body = f.raw(t, "POST", "/core/agents/a1/deploy-as-sip", tok, nil, nil)
	wantError(t, "deploy-as-sip of an unknown agent", status, body, http.StatusNotFound, api.CodeUnknownAgent, "")
	status, _, body = f.raw(t, "GET", "/nowhere", tok, nil, nil)
	wantError(t, "unknown route", status, body, http.StatusNotFound, api.CodeUnknownMethod, "")
}

// TestCoreManagedAndOrgs: managed trunks are 400 to PUT and DELETE
// without trunks:admin; another organization's trunk is 404.
func TestCoreManagedAndOrgs(t *testing.T) {
	f := newFixture(t)
	admin := orgToken(t, auth.ScopeAdmin, "")
	acme := orgToken(t, auth.ScopeManage, "acme")
	globex := orgToken(t, auth.ScopeManage, "globex")
	m := sample("m1")
	m.ManagedAccountID = "acct-1"
	m.OrganizationID = "acme"
	if status, body := f.do(t, "POST", "/v1/trunks", admin, m); status != http.StatusCreated {
		t.Fatalf("admin POST managed = %d %s", status, body)
	}
	status, _, body := f.raw(t, "PUT", "/core/trunks/m1", acme, nil, []byte(`{"name": "mine now"}`))
	wantError(t, "PUT managed", status, body, http.StatusBadRequest, api.CodeManagedTrunk, "")
	status, _, body = f.raw(t, "DELETE", "/core/trunks/m1", acme, nil, nil)
	wantError(t, "DELETE managed", status, body, http.StatusBadRequest, api.CodeManagedTrunk, "")
	if status, _, body = f.raw(t, "GET", "/core/trunks/m1", acme, nil, nil); status != http.StatusOK || !bytes.Contains(body, []byte(`"managed_account_id":"acct-1"`)) {
		t.Errorf("acme GET managed = %d %s; want it readable", status, body)
	}
	status, _, body = f.raw(t, "GET", "/core/trunks/m1", globex, nil, nil)
	wantError(t, "globex GET acme's trunk", status, body, http.StatusNotFound, api.CodeInvalidTrunk, "")
	status, _, body = f.raw(t, "DELETE", "/core/trunks/m1", globex, nil, nil)
	wantError(t, "globex DELETE acme's trunk", status, body, http.StatusNotFound, api.CodeInvalidTrunk, "")
	if status, _, body = f.raw(t, "GET", "/core/trunks", globex, nil, nil); status != http.StatusOK || bytes.Contains(body, []byte("m1")) {
		t.Errorf("globex list = %d %s; want acme's trunk absent", status, body)
	}
	if status, _, _ = f.raw(t, "DELETE", "/core/trunks/m1", admin, nil, nil); status != http.StatusNoContent {
		t.Errorf("admin DELETE managed = %d; want 204", status)
	}
}

// TestNativeIfMatch: GET's ETag is the revision; PUT and DELETE with a
// stale If-Match are 412 and change nothing; keep_secrets keeps the
// password.
func TestNativeIfMatch(t *testing.T) {
	f := newFixture(t)
	tok := token(t, auth.ScopeManage)
	f.do(t, "POST", "/v1/trunks", tok, sample("c1"))
	status, hdr, body := f.raw(t, "GET", "/v1/trunks/c1", tok, nil, nil)
	etag := hdr.Get("ETag")
	var rec map[string]any
	if status != 200 || etag == "" || json.Unmarshal(body, &rec) != nil || rec["sip_password_set"] != true || rec["sip_password"] != nil {
		t.Fatalf("GET = %d, ETag %q, %s", status, etag, body)
	}
	rec["display_name"] = "Renamed"
	b, _ := json.Marshal(rec)
	status, hdr2, body := f.raw(t, "PUT", "/v1/trunks/c1?keep_secrets=true", tok, map[string]string{"If-Match": etag}, b)
	if status != http.StatusNoContent || hdr2.Get("ETag") == etag {
		t.Fatalf("PUT with If-Match = %d %s, ETag %q; want 204 and a new ETag", status, body, hdr2.Get("ETag"))
	}
	if got := f.store.Trunk("c1"); got.DisplayName != "Renamed" || got.SIPPassword != "s3cret" {
		t.Errorf("after PUT: %q, password kept %v", got.DisplayName, got.SIPPassword == "s3cret")
	}
	status, _, body = f.raw(t, "PUT", "/v1/trunks/c1", tok, map[string]string{"If-Match": etag}, b)
	wantError(t, "PUT stale If-Match", status, body, http.StatusPreconditionFailed, api.CodeConflict, "")
	status, _, body = f.raw(t, "DELETE", "/v1/trunks/c1", tok, map[string]string{"If-Match": etag}, nil)
	wantError(t, "DELETE stale If-Match", status, body, http.StatusPreconditionFailed, api.CodeConflict, "")
	status, _, body = f.raw(t, "PUT", "/v1/trunks/c1", tok, map[string]string{"If-Match": "yesterday"}, b)
	wantError(t, "PUT bad If-Match", status, body, http.StatusBadRequest, api.CodeInvalidArgument, "If-Match")
	if got := f.store.Trunk("c1"); got.DisplayName != "Renamed" {
		t.Errorf("refused writes changed the trunk: %q", got.DisplayName)
	}
	status, _, body = f.raw(t, "GET", "/v1/trunks?colour=red", tok, nil, nil)
	wantError(t, "unknown query parameter", status, body, http.StatusBadRequest, api.CodeInvalidArgument, "colour")
}

// TestOpenAPIMatchesRoutes: the OpenAPI document names exactly the routes
// served, and docs/openapi.json is the document served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t)
	status, _, served := f.raw(t, "GET", "/openapi.json", "", nil, nil)
	if status != 200 || !bytes.Equal(served, rest.OpenAPI()) {
		t.Fatalf("GET /openapi.json = %d", status)
	}
	docs, err := os.ReadFile("../../docs/openapi.json")
	if err != nil || !bytes.Equal(docs, served) {
		t.Errorf("docs/openapi.json differs from rpc/rest/openapi.json (copy it over): %v", err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(served, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v, version %q", err, doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+path)
		}
	}
	routes := rest.NewServer(rest.Config{Service: nil, Auth: nil}).Routes()
	slices.Sort(documented)
	slices.Sort(routes)
	if !slices.Equal(documented, routes) {
		t.Errorf("OpenAPI paths:\n%v\nroutes served:\n%v", documented, routes)
	}
}

// TestCoreSecureSIP: the BYOC transport and media_encryption names set the
// trunk's transport (TLS opening the usual TLS port) and SRTP policies, and
// read back as they were written.
func TestCoreSecureSIP(t *testing.T) {
	f := newFixture(t)
	tok := token(t, auth.ScopeManage)
	body := `{"name": "secure", "inbound_config": {"media_encryption": "ALLOW"},
	  "outbound_config": {"address": "192.0.2.1:5061", "auth_username": "u", "auth_password": "p", "transport": "TLS", "media_encryption": "REQUIRE"}}`
	status, _, b := f.raw(t, "POST", "/core/trunks", tok, nil, []byte(body))
	if status != http.StatusCreated {
		t.Fatalf("POST = %d %s; want 201", status, b)
	}
	var c rest.CoreTrunk
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.InboundConfig.MediaEncryption != "ALLOW" || c.OutboundConfig == nil ||
		c.OutboundConfig.Transport != "TLS" || c.OutboundConfig.MediaEncryption != "REQUIRE" {
		t.Errorf("POST answered %+v %+v; want ALLOW in, TLS + REQUIRE out", c.InboundConfig, c.OutboundConfig)
	}
	stored, err := f.store.GetTrunk(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Transport != trunk.TransportTLS || stored.SIPTLSPort != trunk.DefaultSIPTLSPort ||
		stored.InboundMediaEncryption != trunk.EncryptAllow || stored.OutboundMediaEncryption != trunk.EncryptRequire {
		t.Errorf("stored transport %v tls port %d, in %v, out %v; want TLS 5061 ALLOW REQUIRE",
			stored.Transport, stored.SIPTLSPort, stored.InboundMediaEncryption, stored.OutboundMediaEncryption)
	}
}

// TestCoreDeployAsSIP: the BYOC deploy-as-sip routes: 409 for an agent
// without a published version, {uri, deployed} and idempotent otherwise;
// another organization's agent is 404.
func TestCoreDeployAsSIP(t *testing.T) {
	f := newFixture(t)
	tok := token(t, auth.ScopeManage)
	for _, a := range []trunk.Agent{{AgentID: "draft", WebsocketURL: "wss://a.example.com/"},
		{AgentID: "sales", WebsocketURL: "wss://a.example.com/", Published: true}} {
		if err := f.svc.PutAgent(context.Background(), &a, control.Access{}); err != nil {
			t.Fatal(err)
		}
	}
	status, _, body := f.raw(t, "POST", "/core/agents/draft/deploy-as-sip", tok, nil, nil)
	wantError(t, "deploy unpublished", status, body, http.StatusConflict, api.CodePrecondition, "")
	for i := range 2 {
		status, _, body = f.raw(t, "POST", "/core/agents/sales/deploy-as-sip", tok, nil, nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"uri":"sip:sales@sip.example.com"`) || !strings.Contains(string(body), `"deployed":true`) {
			t.Errorf("deploy #%d = %d %s; want 200 {uri, deployed: true}", i+1, status, body)
		}
	}
	status, _, body = f.raw(t, "POST", "/core/agents/sales/deploy-as-sip", orgToken(t, auth.ScopeManage, "globex"), nil, nil)
	wantError(t, "another organization's agent", status, body, http.StatusNotFound, api.CodeUnknownAgent, "")
	status, _, body = f.raw(t, "DELETE", "/core/agents/sales/deploy-as-sip", tok, nil, nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"deployed":false`) {
		t.Errorf("undeploy = %d %s; want 200 deployed false", status, body)
	}
}
