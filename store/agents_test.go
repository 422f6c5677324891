package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trunkd/trunkd/trunk"
	bolt "go.etcd.io/bbolt"
)

func TestAgentsDurableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := open(t, path)
	a := &trunk.Agent{AgentID: "sales", WebsocketURL: "wss://agents.example.com/sales", Published: true, SIPDeployed: true}
	if err := db.PutAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.PutAgent(ctx, &trunk.Agent{AgentID: "b", WebsocketURL: "ws://127.0.0.1:1/"}); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveAgent(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveAgent(ctx, "b"); trunk.ErrorCode(err) != trunk.ENOAGENT {
		t.Errorf("RemoveAgent of a removed agent = %v; want ENOAGENT", err)
	}
	db.Close()
	db = open(t, path)
	got, err := db.GetAgent(ctx, "sales")
	if err != nil || *got != *a {
		t.Fatalf("GetAgent after reopen = %+v, %v; want %+v", got, err, a)
	}
	if l, err := db.ListAgents(ctx); err != nil || len(l) != 1 {
		t.Errorf("ListAgents = %v, %v; want the one agent", l, err)
	}
	if _, err := db.GetAgent(ctx, "nope"); trunk.ErrorCode(err) != trunk.ENOAGENT {
		t.Errorf("GetAgent(unknown) = %v; want ENOAGENT", err)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

// TestAgentsBucketAddedToOldDatabase: a database written before agents
// existed gains the bucket when opened.
func TestAgentsBucketAddedToOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trunkd.db")
	db := open(t, path)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketAgents) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = open(t, path)
	if err := db.PutAgent(context.Background(), &trunk.Agent{AgentID: "x", WebsocketURL: "ws://127.0.0.1:1/"}); err != nil {
		t.Fatalf("PutAgent on a database from before agents = %v", err)
	}
}
