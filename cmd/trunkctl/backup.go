package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// cmdBackup saves a consistent copy of trunkd's store, as etcdctl
// snapshot save does: streamed into a temporary file beside FILE, its
// SHA-256 checked, fsynced, renamed into place; FILE.sha256 beside it in
// sha256sum's format.
func cmdBackup(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("backup", "-o FILE", "o")
	out := fs.String("o", "", "`file` to write the backup to (required); FILE.sha256 is written beside it")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("give -o FILE")}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.part")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	head, digest, err := cl.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup not written: %w", err)
	}
	sum := hex.EncodeToString(digest[:])
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	if err := writeAtomic(*out+".sha256", []byte(sum+"  "+filepath.Base(*out)+"\n")); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(*out)); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "backup of %d bytes (%s store) written to %s\nsha256 %s (in %s.sha256)\nkeep DATA/secret.key with it: the trunks' secrets are sealed with that key\n",
		head.Size, head.Format, *out, sum, *out)
	return nil
}

// writeAtomic writes b to path through a synced temporary file.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// cmdReload asks trunkd to re-read its JWT keys and certificates and,
// with --log-level, to change its log level.
func cmdReload(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("reload", "[--log-level LEVEL]")
	level := fs.String("log-level", "", "set trunkd's log `level` (debug, info, warn, error) until the next reload naming one")
	cl, _, err := c.connect(ctx, fs, args, 0)
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.Reload(ctx, *level)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "reloaded: %d JWT verification key(s), log level %s, certificates %v\n", r.JWTKeys, r.LogLevel, r.Certificates)
	return nil
}
