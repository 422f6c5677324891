// Package store keeps trunk records in a bbolt database file. It is the
// only package in trunkd that imports bbolt.
//
// # Layout
//
// Two buckets: "meta" holds the marker that says the file is trunkd's, the
// schema version, and a key check value (a constant sealed with the secret
// key, so a wrong key is refused at Open instead of corrupting records);
// "trunks" maps trunk_id to a record in the format of package store/record
// (a version byte, then JSON with the wire field names, secrets sealed;
// JSON rather than MessagePack: encoding/json allocates only as much as it
// reads, and records stay readable with jq). The trunks bucket's sequence
// hands out revisions: every write takes the next one, so a revision is
// never reused, not even by a trunk removed and added again.
//
// # Schema versions
//
// Version 2 added revision, created_at and updated_at to each record. Open
// migrates a version 1 file in one transaction (a failure leaves it as it
// was); a trunkd that knows only version 1 then refuses the file, so back
// it up before upgrading if you may need to go back.
//
// # Durability
//
// Writes are queued to one writer goroutine that takes everything queued,
// checks each op against the newest state, and appends them as one frame
// to the write-ahead log (the database's path + "-wal", see wal.go) with
// one fdatasync; then it acknowledges them. Concurrent writers share the
// fdatasync, and a lone writer writes at once (no batching delay, unlike
// bbolt's DB.Batch). An operation that fails its own check (exists, not
// found, conflict) fails alone; a failed append fails every operation of
// its frame, and nothing of it is acknowledged.
//
// The applier commits the frames to bbolt in the background, all those of
// the last 20 ms in one transaction (bbolt's two fsyncs), and records the
// last frame's sequence in the meta bucket. Until then reads find the
// writes in the pending set (pending.go). Open replays the frames bbolt
// lacks, so an acknowledged write survives a crash; the log is rewound
// once bbolt holds all of it. Readers of bbolt alone (Snapshot,
// ForEachTrunk, ForEachRecord, Check) wait for it to catch up first.
//
// # Where it can hurt
//
//   - A write error from the disk (full, read-only, I/O) fails the writes
//     of that frame with trunk.EUNAVAILABLE. While bbolt cannot commit
//     (disk full), writes go on into the log until it is full (8 MiB),
//     reads see them, and the applier retries; bbolt's file stays
//     consistent (it writes its meta page last). A failed fdatasync of the
//     log fails every later write until a restart (the page cache can no
//     longer be trusted).
//   - bbolt never gives freed pages back to the file system: the file does
//     not shrink when trunks are removed. Compact offline (bbolt compact).
//   - The file is locked while open; a second process gets an error after
//     a second instead of waiting.
//   - Snapshot (the online backup) holds a read transaction for as long
//     as the copy takes: a writer that must grow the file's memory map
//     meanwhile waits for it. Restore installs a checked copy of a backup
//     and refuses a store a running process holds.
//   - Losing the secret key loses the secrets (the records stay readable
//     otherwise, but Open refuses a different key).
package store
