package etcd

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trunkd/trunkd/store/etcd/etcdtest"
	"github.com/trunkd/trunkd/store/record"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func open(t *testing.T, c *etcdtest.Cluster, prefix string, key []byte) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Endpoints: c.Endpoints(), Prefix: prefix}, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sample(id string) *trunk.Trunk {
	t := trunk.Defaults()
	t.TrunkID, t.GatewayIP, t.Domain, t.SIPPassword = id, "192.0.2.10", "sip.example.com", "pw-"+id
	t.Normalize()
	return &t
}

func TestStore(t *testing.T) {
	c := etcdtest.Start(t, 3)
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, c) })
	t.Run("ConflictAcrossNodes", func(t *testing.T) { testConflict(t, c) })
	t.Run("GoldenRecords", func(t *testing.T) { testGolden(t, c) })
	t.Run("MetaChecks", func(t *testing.T) { testMeta(t, c) })
	t.Run("WatchAndCompaction", func(t *testing.T) { testWatch(t, c) })
	t.Run("ListPages", func(t *testing.T) { testList(t, c) })
	t.Run("OneMemberDown", func(t *testing.T) { testMemberDown(t, c) })
}

func testCRUD(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	s := open(t, c, "/crud/", testKey)
	a := sample("a")
	if err := s.AddTrunk(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.Meta.Revision == 0 || a.Meta.CreatedAt.IsZero() || a.Meta.UpdatedAt != a.Meta.CreatedAt {
		t.Fatalf("Meta after add = %+v", a.Meta)
	}
	if err := s.AddTrunk(ctx, sample("a")); trunk.ErrorCode(err) != trunk.EEXISTS {
		t.Fatalf("second AddTrunk = %v; want EEXISTS", err)
	}
	got, err := s.GetTrunk(ctx, "a")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("GetTrunk = %+v, %v; want %+v", got, err, a)
	}
	b := a.Clone()
	b.DisplayName = "changed"
	if err := s.UpdateTrunk(ctx, b, a.Meta.Revision); err != nil {
		t.Fatal(err)
	}
	if b.Meta.Revision <= a.Meta.Revision || !b.Meta.CreatedAt.Equal(a.Meta.CreatedAt) {
		t.Fatalf("Meta after update = %+v; before %+v", b.Meta, a.Meta)
	}
	if err := s.UpdateTrunk(ctx, b, a.Meta.Revision); trunk.ErrorCode(err) != trunk.ECONFLICT {
		t.Fatalf("stale UpdateTrunk = %v; want ECONFLICT", err)
	}
	if err := s.RemoveTrunk(ctx, "a", a.Meta.Revision); trunk.ErrorCode(err) != trunk.ECONFLICT {
		t.Fatalf("stale RemoveTrunk = %v; want ECONFLICT", err)
	}
	if err := s.RemoveTrunk(ctx, "a", b.Meta.Revision); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":    func() error { _, err := s.GetTrunk(ctx, "a"); return err }(),
		"update": s.UpdateTrunk(ctx, sample("a"), 0),
		"remove": s.RemoveTrunk(ctx, "a", 0),
	} {
		if trunk.ErrorCode(err) != trunk.ENOTFOUND {
			t.Errorf("%s after remove = %v; want ENOTFOUND", name, err)
		}
	}
	again := sample("a")
	if err := s.AddTrunk(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.Meta.Revision <= b.Meta.Revision {
		t.Errorf("revision after re-add = %d; want above %d", again.Meta.Revision, b.Meta.Revision)
	}
	// The bytes in etcd are the shared record format, secrets sealed.
	resp, err := s.cli.Get(ctx, "/crud/trunks/a")
	if err != nil {
		t.Fatal(err)
	}
	v := resp.Kvs[0].Value
	if record.VersionOf(v) != record.Version || strings.Contains(string(v), "pw-a") {
		t.Errorf("stored bytes: version %d, plaintext secret %v", record.VersionOf(v), strings.Contains(string(v), "pw-a"))
	}
}

// testConflict: two nodes update the same revision at once; exactly one
// wins, the other gets ECONFLICT.
func testConflict(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	n1, n2 := open(t, c, "/conflict/", testKey), open(t, c, "/conflict/", testKey)
	base := sample("x")
	if err := n1.AddTrunk(ctx, base); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		cur, err := n1.GetTrunk(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, s := range []*Store{n1, n2} {
			wg.Go(func() {
				u := cur.Clone()
				u.DisplayName = fmt.Sprintf("node %d round %d", i, round)
				errs[i] = s.UpdateTrunk(ctx, u, cur.Meta.Revision)
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch trunk.ErrorCode(err) {
			case "":
				won++
			case trunk.ECONFLICT:
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writes won (%v); want exactly 1", round, won, errs)
		}
	}
}

func goldenKey(t *testing.T) []byte {
	b, err := os.ReadFile("../../testdata/records/v1.key")
	if err != nil {
		t.Fatal(err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testGolden: the etcd store reads the golden records, the bytes the
// bbolt store keeps, as the shared codec decodes them.
func testGolden(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	key := goldenKey(t)
	codec, _ := record.NewCodec(key)
	for _, name := range []string{"v1.bin", "v1-nosecrets.bin", "current-nosecrets.bin"} {
		v, err := os.ReadFile(filepath.Join("../../testdata/records", name))
		if err != nil {
			t.Fatal(err)
		}
		s := open(t, c, "/golden/"+name+"/", key)
		want, err := codec.Decode("golden-1", v)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.PutRecord(ctx, "golden-1", v); !ok || err != nil {
			t.Fatalf("%s: PutRecord = %v, %v", name, ok, err)
		}
		got, err := s.GetTrunk(ctx, "golden-1")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Meta.Revision == 0 {
			t.Errorf("%s: revision 0; want the key's mod_revision", name)
		}
		want.Meta.Revision = got.Meta.Revision
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: etcd read\n%+v\nbbolt codec read\n%+v", name, got, want)
		}
		if ok, err := s.PutRecord(ctx, "golden-1", v); ok || err != nil {
			t.Errorf("%s: second PutRecord = %v, %v; want false, nil (idempotent)", name, ok, err)
		}
	}
}

func testMeta(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	open(t, c, "/meta/", testKey)
	other := []byte("ffffffffffffffffffffffffffffffff")
	_, err := Open(ctx, Config{Endpoints: c.Endpoints(), Prefix: "/meta/"}, other)
	if err == nil || !strings.Contains(err.Error(), "another secret key") {
		t.Errorf("Open with another key = %v; want a key error", err)
	}
	s := open(t, c, "/x/", testKey)
	if _, err := s.cli.Put(ctx, "/foreign/meta", "not ours"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Config{Endpoints: c.Endpoints(), Prefix: "/foreign/"}, testKey)
	if err == nil || !strings.Contains(err.Error(), "not trunkd's") {
		t.Errorf("Open of a foreign prefix = %v; want refused", err)
	}
	// Fail fast: nobody listens there.
	start := time.Now()
	_, err = Open(ctx, Config{Endpoints: []string{"127.0.0.1:1"}, Timeout: time.Second}, testKey)
	if err == nil || !strings.Contains(err.Error(), "no member answered") {
		t.Errorf("Open of a dead endpoint = %v; want no member answered", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of a dead endpoint took %v", d)
	}
}

func testWatch(t *testing.T, c *etcdtest.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := open(t, c, "/watch/", testKey)
	if err := s.AddTrunk(ctx, sample("w1")); err != nil {
		t.Fatal(err)
	}
	all, rev, err := s.Snapshot(ctx)
	if err != nil || len(all) != 1 || rev < all[0].Meta.Revision {
		t.Fatalf("Snapshot = %d trunks at %d, %v", len(all), rev, err)
	}
	ev := s.Watch(ctx, rev)
	w2 := sample("w2")
	if err := s.AddTrunk(ctx, w2); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveTrunk(ctx, "w1", 0); err != nil {
		t.Fatal(err)
	}
	got := []control.Event{<-ev, <-ev}
	if got[0].Kind != control.Put || got[0].ID != "w2" || got[0].Revision != w2.Meta.Revision || got[0].Trunk.SIPPassword != "pw-w2" {
		t.Errorf("first event = %+v; want Put w2 at %d", got[0], w2.Meta.Revision)
	}
	if got[1].Kind != control.Delete || got[1].ID != "w1" {
		t.Errorf("second event = %+v; want Delete w1", got[1])
	}
	// A watch from a compacted revision is a Reset.
	head, _ := s.cli.Get(ctx, "/watch/meta")
	if _, err := s.cli.Compact(ctx, head.Header.Revision); err != nil {
		t.Fatal(err)
	}
	e := <-s.Watch(ctx, rev)
	if e.Kind != control.Reset {
		t.Errorf("watch from a compacted revision = %+v; want Reset", e)
	}
}

func testList(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	s := open(t, c, "/list/", testKey)
	var ops []clientv3.Op
	for i := range 2500 {
		tr := sample(fmt.Sprintf("t%05d", i))
		v, err := s.encode(tr)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(s.key(tr.TrunkID), string(v)))
		if len(ops) == 100 {
			if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	page, err := s.ListTrunks(ctx, trunk.ListQuery{After: "t00999", Limit: 1200})
	if err != nil || len(page) != 1200 || page[0].TrunkID != "t01000" || page[1199].TrunkID != "t02199" {
		t.Fatalf("ListTrunks = %d trunks, %v", len(page), err)
	}
	odd, _ := s.ListTrunks(ctx, trunk.ListQuery{Limit: 3, Keep: func(t *trunk.Trunk) bool { return t.TrunkID[5]%2 == 1 }})
	if len(odd) != 3 || odd[0].TrunkID != "t00001" || odd[2].TrunkID != "t00005" {
		t.Errorf("filtered ListTrunks = %v", ids(odd))
	}
	all, _, err := s.Snapshot(ctx)
	if err != nil || len(all) != 2500 {
		t.Errorf("Snapshot = %d trunks, %v; want 2500", len(all), err)
	}
	if n, err := s.Count(ctx); n != 2500 || err != nil {
		t.Errorf("Count = %d, %v", n, err)
	}
}

func ids(ts []*trunk.Trunk) []string {
	var s []string
	for _, t := range ts {
		s = append(s, t.TrunkID)
	}
	return s
}

// testMemberDown: with one of three members killed, writes and reads go on.
func testMemberDown(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	s := open(t, c, "/down/", testKey)
	m := c.Members[0]
	m.Kill()
	defer func() { m.Restart(); c.WaitHealthy(20 * time.Second) }()
	for i := range 5 {
		tr := sample(fmt.Sprintf("d%d", i))
		if err := s.AddTrunk(ctx, tr); err != nil {
			t.Fatalf("AddTrunk with a member down: %v", err)
		}
		if _, err := s.GetTrunk(ctx, tr.TrunkID); err != nil {
			t.Fatalf("GetTrunk with a member down: %v", err)
		}
	}
}
