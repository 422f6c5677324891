package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/trunkd/trunkd/store"
)

// restore is `trunkd restore --from FILE --data DIR`: it installs a backup
// (trunkctl backup) as DIR/trunkd.db, after checking it. It refuses a data
// dir whose store a running trunkd holds, and an existing store unless
// --force.
func restore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("trunkd restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "backup `file` to restore (written by trunkctl backup)")
	data := fs.String("data", "./trunkd-data", "data `dir` to restore into")
	keyFile := fs.String("secret-key-file", "", "AES-256 key `file` the backup's secrets are sealed with (default: DATA/secret.key)")
	force := fs.Bool("force", false, "replace an existing (stopped) store")
	if err := fs.Parse(args); err != nil {
		return map[bool]int{true: 0, false: 2}[errors.Is(err, flag.ErrHelp)]
	}
	if *from == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: trunkd restore --from FILE [--data DIR] [--secret-key-file FILE] [--force]")
		return 2
	}
	if err := restoreFile(*from, *data, *keyFile, *force); err != nil {
		fmt.Fprintln(stderr, "trunkd restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s; start trunkd with --data %s\n", *from, filepath.Join(*data, "trunkd.db"), *data)
	return 0
}

func restoreFile(from, data, keyFile string, force bool) error {
	if keyFile == "" {
		keyFile = filepath.Join(data, "secret.key")
	}
	if !fileExists(keyFile) {
		return fmt.Errorf("%s not found: a backup's secrets are sealed with the secret.key of the trunkd it came from; copy that key there (mode 0600) or name it with --secret-key-file", keyFile)
	}
	key, err := store.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	if err := checkSum(from); err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	return store.Restore(from, filepath.Join(data, "trunkd.db"), key, force)
}

// checkSum checks from against FROM.sha256 (sha256sum's format, written
// by trunkctl backup) when that file is there.
func checkSum(from string) error {
	line, err := os.ReadFile(from + ".sha256")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !bytes.Equal([]byte(got), []byte(strings.ToLower(want))) {
		return fmt.Errorf("%s does not match %s.sha256 (sha256 %s, want %s): the copy is damaged", from, from, got, want)
	}
	return nil
}
