package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/trunkd/trunkd/trunk/secretfile"
	bolt "go.etcd.io/bbolt"
)

// The write-ahead log: a file beside the database (its path + "-wal")
// that holds the writes acknowledged but not yet committed to bbolt.
//
//	header  64 bytes: walMagic, the database's 16-byte wal_id, zeros
//	frame   u32 body length, u32 CRC-32C of the body, the body
//	body    u64 seq, u64 revision counter after the frame, u32 entries,
//	        then per entry: u8 kind, uvarint id length, id,
//	        uvarint value length, value (a store/record record; none for
//	        a removal)
//
// Frames are written at increasing offsets from the header's end and each
// is fdatasynced before the writes in it are acknowledged. Frames carry
// consecutive sequence numbers; the database's meta bucket holds the
// sequence of the last frame committed to bbolt (wal_applied). Once bbolt
// holds every frame, the next frame is written at the header's end again,
// over the old ones: the file keeps its blocks, so an fdatasync flushes
// data only. Reading stops at the first frame that is torn (bad length or
// CRC) or out of sequence, which is where the next frame would go; stale
// frames past it are older than what bbolt holds.
//
// The file grows by zero-filled chunks synced before use, so that a frame
// is never the write that allocates blocks: disk full shows up at the
// chunk's write, which is undone, never in a frame's fdatasync.
const (
	walMagic      = "trunkd wal 1\n\x00\x00\x00"
	walHeaderSize = 64
	walFrameHead  = 8
	walBodyHead   = 20
	walMinChunk   = 256 << 10
	walMaxChunk   = 4 << 20
)

// walMaxSize is where the log wraps even while bbolt lags behind: the
// writer then waits for bbolt to catch up (one commit, every few thousand
// writes under a steady load).
const walMaxSize = 8 << 20

const (
	entryPut byte = 1
	entryDel byte = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// walEntry is one write of a frame: a record to put, or nil to delete.
type walEntry struct {
	id    string
	value []byte
}

// walFrame is one group of writes, acknowledged together.
type walFrame struct {
	seq     uint64
	rev     uint64 // the revision counter after the frame
	entries []walEntry
}

// wal is the open log. Only the writer goroutine appends; Open replays.
type wal struct {
	f      *os.File
	path   string
	off    int64 // where the next frame goes
	size   int64 // bytes allocated (zero-filled and synced)
	max    int64
	buf    []byte
	ring   *uringSyncer // nil where there is no io_uring
	broken error        // a failed fdatasync: nothing more can be trusted
}

func walPath(dbPath string) string { return dbPath + "-wal" }

// openWAL opens the log of the database with the given wal_id, creating
// it when absent. A file that is not a trunkd log, or the log of another
// database, is refused and left as it is.
func openWAL(path string, id []byte, max int64) (*wal, error) {
	os.Remove(path + ".tmp") // a creation cut short
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err := createWAL(path, id); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("store: write-ahead log: %w", err)
	}
	w := &wal{f: f, path: path, off: walHeaderSize, max: max}
	if err := w.checkHeader(id); err != nil {
		f.Close()
		return nil, err
	}
	w.ring, _ = newUringSyncer(f) // without one, fdatasync alone
	return w, nil
}

// createWAL writes a header and a first zeroed chunk beside path (synced,
// as a new secret file is) and renames it into place, so the log is never
// seen half made.
func createWAL(path string, id []byte) error {
	tmp := path + ".tmp"
	b := make([]byte, walHeaderSize+walMinChunk)
	copy(b, walMagic)
	copy(b[len(walMagic):], id)
	err := secretfile.Create(tmp, b, 0o600)
	if err == nil {
		if err = os.Rename(tmp, path); err == nil {
			err = syncDir(filepath.Dir(path))
		}
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: creating the write-ahead log: %w", err)
	}
	return nil
}

func (w *wal) checkHeader(id []byte) error {
	fi, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("store: write-ahead log: %w", err)
	}
	h := make([]byte, walHeaderSize)
	if _, err := w.f.ReadAt(h, 0); err != nil || !fi.Mode().IsRegular() || string(h[:len(walMagic)]) != walMagic {
		return fmt.Errorf("store: %s is not a trunkd write-ahead log; it was not modified (move it away if it is not needed)", w.path)
	}
	if !bytes.Equal(h[len(walMagic):len(walMagic)+len(id)], id) {
		return fmt.Errorf("store: %s is the write-ahead log of another database; it was not modified (remove it only if that database is gone)", w.path)
	}
	w.size = fi.Size()
	return nil
}

// replay calls fn with every frame after applied, in order, and leaves the
// log positioned to write over the frames it read. It stops at the end of
// what was written; a frame out of sequence right after applied means
// frames were lost.
func (w *wal) replay(applied uint64, fn func(walFrame) error) error {
	r := io.NewSectionReader(w.f, 0, w.size)
	off, last := int64(walHeaderSize), uint64(0)
	for {
		fr, n, ok := readFrame(r, off)
		if !ok || (last != 0 && fr.seq != last+1) {
			break
		}
		if fr.seq > applied {
			if fr.seq != applied+1 && last <= applied {
				return fmt.Errorf("store: %s: frame %d follows frame %d in the database; frames are missing (restore from a backup)", w.path, fr.seq, applied)
			}
			if err := fn(fr); err != nil {
				return err
			}
		}
		off, last = off+n, fr.seq
	}
	w.off = walHeaderSize
	return nil
}

// readFrame decodes the frame at off: its size and whether it is whole.
func readFrame(r *io.SectionReader, off int64) (walFrame, int64, bool) {
	var head [walFrameHead]byte
	if _, err := r.ReadAt(head[:], off); err != nil {
		return walFrame{}, 0, false
	}
	n := int64(binary.LittleEndian.Uint32(head[:4]))
	if n < walBodyHead || n > r.Size()-off-walFrameHead {
		return walFrame{}, 0, false
	}
	body := make([]byte, n)
	if _, err := r.ReadAt(body, off+walFrameHead); err != nil || crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(head[4:]) {
		return walFrame{}, 0, false
	}
	fr, ok := decodeBody(body)
	return fr, walFrameHead + n, ok
}

func decodeBody(b []byte) (walFrame, bool) {
	fr := walFrame{seq: binary.LittleEndian.Uint64(b), rev: binary.LittleEndian.Uint64(b[8:])}
	count := binary.LittleEndian.Uint32(b[16:])
	b = b[walBodyHead:]
	for range count {
		if len(b) < 1 {
			return fr, false
		}
		kind := b[0]
		id, rest, ok := uvarintBytes(b[1:])
		if !ok || (kind != entryPut && kind != entryDel) {
			return fr, false
		}
		e := walEntry{id: string(id)}
		b = rest
		if kind == entryPut {
			if e.value, b, ok = uvarintBytes(b); !ok {
				return fr, false
			}
		}
		fr.entries = append(fr.entries, e)
	}
	return fr, len(b) == 0
}

func uvarintBytes(b []byte) (v, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// encode lays fr out as a frame in w.buf.
func (w *wal) encode(fr walFrame) []byte {
	b := append(w.buf[:0], make([]byte, walFrameHead+walBodyHead)...)
	binary.LittleEndian.PutUint64(b[walFrameHead:], fr.seq)
	binary.LittleEndian.PutUint64(b[walFrameHead+8:], fr.rev)
	binary.LittleEndian.PutUint32(b[walFrameHead+16:], uint32(len(fr.entries)))
	for _, e := range fr.entries {
		kind := entryPut
		if e.value == nil {
			kind = entryDel
		}
		b = append(b, kind)
		b = binary.AppendUvarint(b, uint64(len(e.id)))
		b = append(b, e.id...)
		if kind == entryPut {
			b = binary.AppendUvarint(b, uint64(len(e.value)))
			b = append(b, e.value...)
		}
	}
	body := b[walFrameHead:]
	binary.LittleEndian.PutUint32(b, uint32(len(body)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(body, crcTable))
	w.buf = b
	return b
}

// errWALFull says a frame does not fit before the log's end: the caller
// must let bbolt catch up and rewind.
var errWALFull = errors.New("write-ahead log full")

// append writes fr durably at the log's write position. Nothing of a
// failed append is acknowledged; the next one writes over it.
// busy says other writes wait behind this one (see sync).
func (w *wal) append(fr walFrame, busy bool) error {
	if w.broken != nil {
		return w.broken
	}
	b := w.encode(fr)
	end := w.off + int64(len(b))
	if end > w.max && w.off > walHeaderSize {
		return errWALFull
	}
	if err := w.grow(end); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(b, w.off); err != nil {
		return err
	}
	if err := w.sync(busy); err != nil {
		w.broken = fmt.Errorf("write-ahead log: fdatasync failed, restart trunkd: %w", err)
		return w.broken
	}
	w.off = end
	return nil
}

// grow makes sure the file has zeroed, synced blocks up to end. A chunk
// that cannot be written or synced is cut off again.
func (w *wal) grow(end int64) error {
	if end <= w.size {
		return nil
	}
	chunk := min(max(w.size/2, walMinChunk), walMaxChunk)
	size := max(w.size+chunk, end)
	_, err := w.f.WriteAt(make([]byte, size-w.size), w.size)
	if err == nil {
		err = fdatasync(w.f)
	}
	if err != nil {
		w.f.Truncate(w.size)
		return err
	}
	w.size = size
	return nil
}

// rewind makes the next frame go at the header's end; the caller knows
// bbolt holds every frame written.
func (w *wal) rewind() { w.off = walHeaderSize }

// sync makes the frames written durable. When other writes are waiting
// (busy), the fdatasync goes through the io_uring: its goroutine waits in
// Go's poller, so its P runs the RPC handlers meanwhile, where a blocking
// system call would hold the P until the runtime's monitor takes it back
// (a 2-CPU machine lost a third of its CPU to that at 64 writes in
// flight). A lone write calls fdatasync directly: that answers sooner,
// without the hand-overs to the kernel's worker thread and back.
func (w *wal) sync(busy bool) error {
	if busy && w.ring != nil {
		err := w.ring.sync()
		if !isRingError(err) {
			return err
		}
		w.ring.close() // the ring failed, not the flush: fdatasync from now on
		w.ring = nil
	}
	return fdatasync(w.f)
}

func (w *wal) close() error {
	if w.ring != nil {
		w.ring.close()
	}
	return w.f.Close()
}

// keyWALID in the meta bucket names the database's log: a log whose
// header holds another id is not this database's.
var keyWALID = []byte("wal_id")

// openWAL opens the database's log, commits to bbolt the frames it holds
// that bbolt does not (writes acknowledged before a crash), and readies
// the writer and the applier.
func (db *DB) openWAL(max int64, interval time.Duration) error {
	id, applied, err := db.walState()
	if err != nil {
		return err
	}
	w, err := openWAL(walPath(db.path), id, max)
	if err != nil {
		return err
	}
	var frames []walFrame
	err = w.replay(applied, func(fr walFrame) error {
		frames = append(frames, fr)
		db.replayed += len(fr.entries)
		return nil
	})
	if err == nil && len(frames) > 0 {
		err = db.bolt.Update(func(tx *bolt.Tx) error { return applyFrames(tx, frames) })
		applied = frames[len(frames)-1].seq
	}
	if err == nil {
		err = db.bolt.View(func(tx *bolt.Tx) error { db.rev = tx.Bucket(bucketTrunks).Sequence(); return nil })
	}
	if err != nil {
		w.close()
		return fmt.Errorf("store: replaying %s: %w", w.path, err)
	}
	db.wal = w
	db.lastSeq.Store(applied)
	db.applier = newApplier(db, applied, interval)
	return nil
}

// walState returns the database's log id, made on first use, and the
// sequence of the last frame bbolt holds.
func (db *DB) walState() (id []byte, applied uint64, err error) {
	db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		id = bytes.Clone(meta.Get(keyWALID))
		if v := meta.Get(keyApplied); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if id != nil {
		return id, applied, nil
	}
	if _, err := os.Lstat(walPath(db.path)); err == nil {
		return nil, 0, fmt.Errorf("store: %s exists but %s has no write-ahead log of its own; neither was modified", walPath(db.path), db.path)
	}
	id = make([]byte, 16)
	rand.Read(id)
	err = db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyWALID, id) })
	return id, 0, err
}
