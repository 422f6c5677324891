package store

import (
	"slices"
	"strings"
	"sync"

	"github.com/trunkd/trunkd/trunk"
)

// pending holds the writes that are acknowledged (in the write-ahead log)
// but not yet in bbolt, so that reads see them. Only the writer goroutine
// adds and prunes. A reader looks here first and at bbolt after, in a
// transaction begun after the look: an entry is pruned only once bbolt's
// commit of it is visible, so the reader finds the write in one place or
// the other.
type pending struct {
	mu sync.RWMutex
	m  map[string]pendingEntry
}

// pendingEntry is the newest acknowledged state of one trunk: its record,
// or nil once removed, and the log frame that wrote it.
type pendingEntry struct {
	t   *trunk.Trunk // never mutated once stored
	seq uint64
}

// idEntry is a pending entry with its trunk_id, for ordered walks.
type idEntry struct {
	id string
	pendingEntry
}

func (p *pending) get(id string) (pendingEntry, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.m[id]
	return e, ok
}

// set records the successful ops of a batch written as frame seq.
func (p *pending) set(seq uint64, batch []*op, results []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]pendingEntry)
	}
	for i, o := range batch {
		if results[i] == nil {
			p.m[o.id] = pendingEntry{t: o.trunk, seq: seq} // o.trunk is nil for a removal
		}
	}
}

// prune forgets the entries bbolt holds: those of frames up to applied.
func (p *pending) prune(applied uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, e := range p.m {
		if e.seq <= applied {
			delete(p.m, id)
		}
	}
}

func (p *pending) len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.m)
}

// after returns the entries whose trunk_id sorts after the given one, in
// trunk_id order.
func (p *pending) after(after string) []idEntry {
	p.mu.RLock()
	var list []idEntry
	for id, e := range p.m {
		if id > after {
			list = append(list, idEntry{id, e})
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(list, func(a, b idEntry) int { return strings.Compare(a.id, b.id) })
	return list
}
