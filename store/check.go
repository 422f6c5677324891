package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt's on-disk meta page, as far as checking a file needs it: a 16-byte
// page header, then magic, version, page size, flags, root bucket (page,
// sequence), freelist page, page count, transaction id and an FNV-64a
// checksum of the fields before it, all little-endian on the platforms
// trunkd runs on.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaOffset     = 16
	metaChecksumAt = 56
	noFreelist     = ^uint64(0)
)

type boltMeta struct {
	pageSize       uint32
	root, freelist uint64
	pages, txid    uint64
	valid          bool
}

// checkExisting inspects a non-empty file before bbolt opens it for
// writing: its newest valid meta page must describe a database that fits
// in the file (bbolt would read past the end of a file cut short, and
// crash), and it must be trunkd's (bbolt writes to a file on opening it
// read-write, e.g. another program's freelist, before trunkd could refuse
// it). The file is only read.
func checkExisting(path string, size int64) error {
	m, err := readMeta(path)
	if err != nil {
		return err
	}
	if !m.valid {
		return fmt.Errorf("store: %s is not a trunkd database (or is corrupt): no valid bbolt meta page; it was not modified", path)
	}
	need := int64(m.pages) * int64(m.pageSize)
	if m.pages == 0 || need > size || m.root >= m.pages || (m.freelist != noFreelist && m.freelist >= m.pages) {
		return fmt.Errorf("store: %s is truncated or corrupt: its database spans %d bytes but the file holds %d; it was not modified (restore it from a backup)", path, need, size)
	}
	if m.freelist == noFreelist {
		return fmt.Errorf("store: %s is a bbolt database of another program; it was not modified", path)
	}
	return checkOwner(path)
}

// readMeta reads both meta pages and returns the newest valid one.
func readMeta(path string) (boltMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return boltMeta{}, fmt.Errorf("store: %s: %w", path, err)
	}
	defer f.Close()
	m0 := metaAt(f, 0)
	ps := int64(os.Getpagesize())
	if m0.valid {
		ps = int64(m0.pageSize)
	}
	m1 := metaAt(f, ps)
	switch {
	case m0.valid && m1.valid && m1.txid > m0.txid, !m0.valid:
		return m1, nil
	}
	return m0, nil
}

func metaAt(f io.ReaderAt, off int64) boltMeta {
	b := make([]byte, metaOffset+metaChecksumAt+8)
	if _, err := f.ReadAt(b, off); err != nil {
		return boltMeta{}
	}
	b = b[metaOffset:]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(b[:metaChecksumAt])
	if le.Uint32(b[0:]) != boltMagic || le.Uint32(b[4:]) != boltVersion || h.Sum64() != le.Uint64(b[metaChecksumAt:]) {
		return boltMeta{}
	}
	ps := le.Uint32(b[8:])
	if ps < 512 || ps > 1<<20 {
		return boltMeta{}
	}
	return boltMeta{pageSize: ps, root: le.Uint64(b[16:]), freelist: le.Uint64(b[32:]),
		pages: le.Uint64(b[40:]), txid: le.Uint64(b[48:]), valid: true}
}

// checkOwner opens the file read-only (bbolt writes nothing then) and
// refuses a database that is not trunkd's.
func checkOwner(path string) error {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return openError(path, err)
	}
	defer bdb.Close()
	return bdb.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if isEmpty(tx) {
				return nil // a new database bbolt initialised but trunkd never filled
			}
			return fmt.Errorf("store: %s is a bbolt database of another program; it was not modified", path)
		}
		return nil
	})
}
