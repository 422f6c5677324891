package store

import (
	"sync"
	"sync/atomic"

	"github.com/trunkd/trunkd/trunk"
)

// cache holds decoded records so that reads skip decoding and decryption.
// Every committed write updates it before the write is acknowledged. Readers
// fill it on a miss, unless a commit happened since their transaction began
// (then what they read may be older than the cache's entry).
type cache struct {
	mu  sync.RWMutex
	m   map[string]*trunk.Trunk // trunk_id -> record, never mutated once stored
	gen atomic.Uint64           // commits applied
}

// get returns a copy of the cached record of id.
func (c *cache) get(id string) (*trunk.Trunk, bool) {
	t, ok := c.peek(id)
	if !ok {
		return nil, false
	}
	return t.Clone(), true
}

// peek returns the cached record of id itself, which the caller must
// neither modify nor keep.
func (c *cache) peek(id string) (*trunk.Trunk, bool) {
	c.mu.RLock()
	t, ok := c.m[id]
	c.mu.RUnlock()
	return t, ok
}

// peekKeys sets hits[i] to the cached record of keys[i] itself (the
// caller must not modify it), or nil, under one read lock, without making
// strings of the keys.
func (c *cache) peekKeys(keys [][]byte, hits []*trunk.Trunk) {
	c.mu.RLock()
	for i, k := range keys {
		hits[i] = c.m[string(k)]
	}
	c.mu.RUnlock()
}

func (c *cache) generation() uint64 { return c.gen.Load() }

// fill caches t, read in a transaction that began at generation gen.
func (c *cache) fill(gen uint64, t *trunk.Trunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() == gen {
		c.set(t.TrunkID, t.Clone())
	}
}

// apply records a committed batch.
func (c *cache) apply(batch []*op, results []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for i, o := range batch {
		switch {
		case results[i] != nil:
		case o.kind == opRemove:
			delete(c.m, o.id)
		default:
			c.set(o.id, o.trunk)
		}
	}
}

func (c *cache) set(id string, t *trunk.Trunk) {
	if c.m == nil {
		c.m = make(map[string]*trunk.Trunk)
	}
	c.m[id] = t
}
