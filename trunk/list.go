package trunk

import (
	"strings"
	"time"
)

// ListQuery selects a page of stored trunks, in trunk_id byte order.
type ListQuery struct {
	After string // only trunks whose id sorts after this ("" for the first page)
	Limit int    // at most this many trunks

	// Keep, when set, selects the trunks to return; the others are
	// skipped and do not count toward Limit. It must neither modify nor
	// keep the trunk it is given: a store may pass its cached copy.
	Keep func(*Trunk) bool
}

// Keeps reports whether q selects t.
func (q ListQuery) Keeps(t *Trunk) bool { return q.Keep == nil || q.Keep(t) }

// Filter selects trunks by organization, name and times; its zero value
// selects every trunk. Time bounds are exclusive, and a trunk whose time
// is unknown (stored before trunkd kept it) matches no bound on it.
type Filter struct {
	Org        string // the owning organization; "" for every one
	Name       string // exactly this name
	NamePrefix string // names starting with this

	CreatedAfter, CreatedBefore time.Time // zero: no bound
	UpdatedAfter, UpdatedBefore time.Time
}

// Keeps reports whether f selects t.
func (f Filter) Keeps(t *Trunk) bool {
	switch {
	case f.Org != "" && t.Org() != f.Org:
		return false
	case f.Name != "" && t.Name != f.Name:
		return false
	case f.NamePrefix != "" && !strings.HasPrefix(t.Name, f.NamePrefix):
		return false
	}
	return inRange(t.Meta.CreatedAt, f.CreatedAfter, f.CreatedBefore) && inRange(t.Meta.UpdatedAt, f.UpdatedAfter, f.UpdatedBefore)
}

func inRange(t, after, before time.Time) bool {
	if after.IsZero() && before.IsZero() {
		return true
	}
	return !t.IsZero() && (after.IsZero() || t.After(after)) && (before.IsZero() || t.Before(before))
}

// Org returns the organization that owns t: DefaultOrg when unset.
func (t *Trunk) Org() string {
	if t.OrganizationID == "" {
		return DefaultOrg
	}
	return t.OrganizationID
}
