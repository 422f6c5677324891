package auth

import (
	"fmt"
	"slices"

	"github.com/trunkd/trunkd/trunk"
)

// Principal is who a verified token speaks for.
//
// An organization key carries one organization in its org claim and acts
// for it alone; a personal token carries the organizations its holder may
// act for in its orgs claim, and each request names one; a token with
// neither acts for trunk.DefaultOrg, so a single-tenant trunkd needs no
// organizations at all. Admin (scope trunks:admin) acts for any
// organization, or for all of them when the request names none.
type Principal struct {
	Org   string
	Orgs  []string
	Admin bool
}

// ActFor returns the organization a request naming requested ("" for
// none) acts for: "" means every organization (Admin only). A request
// for an organization the token may not act for is ErrPermissionDenied; a
// personal token with several organizations and a request naming none is
// an EINVALID naming org.
func (p Principal) ActFor(requested string) (string, error) {
	if requested != "" {
		if err := trunk.ValidateOrg("org", requested); err != nil {
			return "", err
		}
	}
	switch {
	case p.Admin:
		return requested, nil
	case p.Org != "":
		return p.one(requested, []string{p.Org})
	case len(p.Orgs) > 0:
		if requested == "" && len(p.Orgs) > 1 {
			return "", trunk.FieldErrorf("org", "this token may act for %d organizations; name one (org, or the X-Trunkd-Org header)", len(p.Orgs))
		}
		return p.one(requested, p.Orgs)
	}
	return p.one(requested, []string{trunk.DefaultOrg})
}

func (p Principal) one(requested string, allowed []string) (string, error) {
	if requested == "" {
		return allowed[0], nil
	}
	if !slices.Contains(allowed, requested) {
		return "", &Error{Kind: ErrPermissionDenied, Message: fmt.Sprintf("this token may not act for organization %q", requested)}
	}
	return requested, nil
}
