package trunk

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
