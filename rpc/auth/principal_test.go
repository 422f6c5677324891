package auth

import (
	"errors"
	"testing"

	"github.com/trunkd/trunkd/trunk"
)

func TestActFor(t *testing.T) {
	tests := []struct {
		name      string
		p         Principal
		requested string
		want      string
		err       error // ErrPermissionDenied, or nil
		field     string
	}{
		{"no claim", Principal{}, "", trunk.DefaultOrg, nil, ""},
		{"no claim names default", Principal{}, "default", trunk.DefaultOrg, nil, ""},
		{"no claim names another", Principal{}, "acme", "", ErrPermissionDenied, ""},
		{"org key", Principal{Org: "acme"}, "", "acme", nil, ""},
		{"org key names itself", Principal{Org: "acme"}, "acme", "acme", nil, ""},
		{"org key names another", Principal{Org: "acme"}, "globex", "", ErrPermissionDenied, ""},
		{"personal, one org", Principal{Orgs: []string{"acme"}}, "", "acme", nil, ""},
		{"personal names one", Principal{Orgs: []string{"acme", "globex"}}, "globex", "globex", nil, ""},
		{"personal names none", Principal{Orgs: []string{"acme", "globex"}}, "", "", nil, "org"},
		{"personal names another", Principal{Orgs: []string{"acme", "globex"}}, "initech", "", ErrPermissionDenied, ""},
		{"admin, all", Principal{Admin: true}, "", "", nil, ""},
		{"admin names one", Principal{Admin: true, Org: "acme"}, "globex", "globex", nil, ""},
		{"malformed org", Principal{Admin: true}, "a b", "", nil, "org"},
	}
	for _, tt := range tests {
		got, err := tt.p.ActFor(tt.requested)
		var te *trunk.Error
		switch {
		case tt.field != "":
			if !errors.As(err, &te) || te.Field != tt.field {
				t.Errorf("%s: ActFor(%q) = %q, %v; want an error naming %s", tt.name, tt.requested, got, err, tt.field)
			}
		case tt.err != nil:
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: ActFor(%q) = %q, %v; want %v", tt.name, tt.requested, got, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("%s: ActFor(%q) = %q, %v; want %q", tt.name, tt.requested, got, err, tt.want)
		}
	}
}

// TestOrgClaims: the org and orgs claims reach the Principal, and
// trunks:admin grants every scope.
func TestOrgClaims(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, err := NewAuthenticator(Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := MintOrgToken(secret, ScopeManage, 3600e9, "", "", "acme", nil)
	if p, err := a.Authenticate(tok, ScopeRead); err != nil || p.Org != "acme" || p.Admin {
		t.Errorf("org key = %+v, %v", p, err)
	}
	tok, _ = MintOrgToken(secret, ScopeRead, 3600e9, "", "", "", []string{"acme", "globex"})
	if p, err := a.Authenticate(tok, ScopeRead); err != nil || len(p.Orgs) != 2 {
		t.Errorf("personal token = %+v, %v", p, err)
	}
	tok, _ = MintOrgToken(secret, ScopeAdmin, 3600e9, "", "", "", nil)
	for _, s := range []string{ScopeRead, ScopeManage, ScopeCalls} {
		if p, err := a.Authenticate(tok, s); err != nil || !p.Admin {
			t.Errorf("admin token for %s = %+v, %v", s, p, err)
		}
	}
}
