package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/trunkd/trunkd/trunk"
)

// Snapshot calls fn inside a read transaction, with the database's size
// and a function copying the whole database as it was when the
// transaction began (bbolt's Tx.WriteTo), after bbolt caught up with the
// write-ahead log: the copy holds every write acknowledged before the
// call, and needs no log. Writers keep committing meanwhile. They only wait if the file must grow its memory map while
// the snapshot is open, as with any long bbolt reader.
func (db *DB) Snapshot(ctx context.Context, fn func(size int64, write func(w io.Writer) error) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.catchUp(); err != nil {
		return err
	}
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return trunk.Wrap(trunk.EUNAVAILABLE, err, "cannot open a snapshot of the store")
	}
	defer tx.Rollback()
	return fn(tx.Size(), func(w io.Writer) error {
		_, err := tx.WriteTo(w)
		return err
	})
}

// Restore checks that the file at from is a trunkd store sealed with key
// (bbolt meta pages, trunkd's marker, a schema version this code reads,
// the key check, and bbolt's consistency check) and installs a copy of it
// at to: written beside to, fsynced, renamed over it, the directory
// fsynced. from is never modified. A database at to that another process
// has open is refused, and so is any existing file at to unless force.
// A store of an earlier schema version is migrated in the copy. The
// write-ahead log of the store replaced is removed with it: its writes
// are the ones the restore undoes.
func Restore(from, to string, key []byte, force bool) (err error) {
	if err := checkFile(from); err != nil {
		return err
	}
	if fi, err := os.Stat(from); err != nil {
		return fmt.Errorf("store: %w", err)
	} else if fi.Size() == 0 {
		return fmt.Errorf("store: %s is empty; it is not a trunkd backup", from)
	}
	if err := checkTarget(to, force); err != nil {
		return err
	}
	tmp := to + ".restore"
	if err := copyFile(from, tmp); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	db, err := Open(tmp, key)
	if err != nil {
		return fmt.Errorf("store: %s is not a trunkd store this trunkd can use: %w", from, err)
	}
	if err := errors.Join(db.Check(), db.Close()); err != nil {
		return err
	}
	if err := os.Remove(walPath(tmp)); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Remove(walPath(to)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp, to); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return syncDir(filepath.Dir(to))
}

// checkTarget refuses a target that is live (another process holds
// bbolt's lock on it) or, without force, that exists at all.
func checkTarget(to string, force bool) error {
	fi, err := os.Stat(to)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("store: %s is not a regular file; refusing to replace it", to)
	}
	if locked(to) {
		return fmt.Errorf("store: %s is in use by a running trunkd; stop it before restoring", to)
	}
	if !force {
		return fmt.Errorf("store: %s exists; restoring would replace it (give --force to do so)", to)
	}
	return nil
}

// locked reports whether another process holds bbolt's lock on path (an
// flock, exclusive while a trunkd has the store open). It takes the lock
// itself, without bbolt, so a corrupt file (the reason to restore) is
// never parsed.
func locked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(to)
		return fmt.Errorf("store: copy %s: %w", from, err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", dir, err)
	}
	return nil
}
