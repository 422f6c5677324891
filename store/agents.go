package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

// Agents live in their own bucket, one JSON record behind the schema
// version byte per agent_id (they hold no secrets). Each write is its own
// bbolt transaction, durable (fsynced) before it returns, as trunk writes
// are; agents change rarely, so they skip the trunk writer's batching.
// The bucket is created in a database that predates it: an additive
// change that older trunkd versions ignore.

// ensureAgents creates the agents bucket in an existing database.
func (db *DB) ensureAgents() error {
	var ok bool
	if err := db.bolt.View(func(tx *bolt.Tx) error { ok = tx.Bucket(bucketAgents) != nil; return nil }); err != nil || ok {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketAgents)
		return err
	})
}

func noAgent(id string) error { return trunk.Errorf(trunk.ENOAGENT, "agent %q not found", id) }

// GetAgent returns agent id, or trunk.ENOAGENT.
func (db *DB) GetAgent(ctx context.Context, id string) (*trunk.Agent, error) {
	var a *trunk.Agent
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAgents).Get([]byte(id))
		if v == nil {
			return noAgent(id)
		}
		var err error
		a, err = decodeAgent(id, v)
		return err
	})
	return a, err
}

// ListAgents returns every agent in agent_id order.
func (db *DB) ListAgents(ctx context.Context) ([]*trunk.Agent, error) {
	var l []*trunk.Agent
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAgents).ForEach(func(k, v []byte) error {
			a, err := decodeAgent(string(k), v)
			if err == nil {
				l = append(l, a)
			}
			return err
		})
	})
	return l, err
}

// PutAgent creates or replaces an agent.
func (db *DB) PutAgent(ctx context.Context, a *trunk.Agent) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: encode agent %q: %w", a.AgentID, err)
	}
	v := append([]byte{agentFormat}, b...)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAgents).Put([]byte(a.AgentID), v) }); err != nil {
		return unavailable(err)
	}
	return nil
}

// RemoveAgent deletes an agent, or returns trunk.ENOAGENT.
func (db *DB) RemoveAgent(ctx context.Context, id string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAgents)
		if b.Get([]byte(id)) == nil {
			return noAgent(id)
		}
		return b.Delete([]byte(id))
	})
	if err != nil && trunk.ErrorCode(err) != trunk.ENOAGENT {
		return unavailable(err)
	}
	return err
}

// agentFormat is the version byte of a stored agent: the JSON of
// trunk.Agent behind it. It moves on its own, apart from the trunk
// record's version.
const agentFormat = 1

// maxAgentRecord bounds a stored agent; agents are a few hundred bytes.
const maxAgentRecord = 1 << 20

func corrupt(id string, err error) error {
	return fmt.Errorf("store: agent %q: corrupt record: %w", id, err)
}

func decodeAgent(id string, v []byte) (*trunk.Agent, error) {
	if len(v) < 2 || len(v) > maxAgentRecord || v[0] != agentFormat {
		return nil, corrupt(id, fmt.Errorf("agent record of %d bytes", len(v)))
	}
	var a trunk.Agent
	if err := json.Unmarshal(v[1:], &a); err != nil {
		return nil, corrupt(id, err)
	}
	return &a, nil
}
