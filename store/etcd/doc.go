// Package etcd keeps trunk records in an etcd cluster, so that several
// trunkd nodes share them. It is the only package in trunkd that imports
// the etcd client (go.etcd.io/etcd/client/v3).
//
// # Layout
//
// Every key lives under a prefix (default "/trunkd/v1/"):
//
//	meta              marker, schema version and key check (the same sealed
//	                  constant the bbolt store keeps), created once
//	trunks/<id>       the record, in the bytes of package store/record
//	nodes/<node>      a live node, on that node's lease
//	owner/<id>        the node that registers trunk <id>, on its lease
//
// A record's revision is the key's etcd mod_revision: it changes on every
// write and never repeats, also across a remove and re-add. The revision
// inside the record bytes is left empty (it is not known before the write
// commits); created_at and updated_at are kept there as on bbolt.
//
// # Writes
//
// An add is a transaction guarded by "the key does not exist", an update
// and a remove by "the key is at the revision read" (and, with
// if_revision, at that one), so a conflicting write from another node is
// ECONFLICT, checked by etcd. A write whose outcome is unknown (a timeout,
// a leader change mid-request) is settled by reading the key back: our
// bytes mean it committed; the old revision means it did not and is tried
// again under the same guard, so it can never apply twice.
//
// # Where it can hurt
//
//   - The etcd client does not wait for a connection: Open checks the
//     cluster (a status and a quorum read) and fails with the endpoints it
//     tried, rather than serving with no store.
//   - Records carry sealed secrets; every etcd member, snapshot and backup
//     holds them. Every node needs the same secret key; Open refuses a node
//     whose key differs from the one the cluster was created with.
//   - A watch may miss events on old servers (3.4 before 3.4.31); the
//     reconcile loop of trunk/control resyncs periodically.
package etcd
