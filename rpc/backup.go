package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/trunkd/trunkd/rpc/api"
	"github.com/vmihailenco/msgpack/v5"
)

// BackupRequest is the body of Backup.
type BackupRequest = api.BackupRequest

// BackupResponse is the head of a Backup answer.
type BackupResponse = api.BackupResponse

// ReloadRequest and ReloadResponse are Reload's body and answer.
type (
	ReloadRequest  = api.ReloadRequest
	ReloadResponse = api.ReloadResponse
)

// ErrBackupChecksum is returned by Backup when the bytes received do not
// match the digest the server sent after them.
var ErrBackupChecksum = errors.New("rpc: backup checksum mismatch: the copy is damaged")

// Backup streams a consistent copy of the server's store to w and checks
// it against the SHA-256 the server sends after it. It returns the head
// of the answer and the digest. w holds a partial copy after an error:
// write to a temporary file and keep it only when Backup succeeds.
func (c *Client) Backup(ctx context.Context, w io.Writer) (head BackupResponse, digest [sha256.Size]byte, err error) {
	frame, err := encodeRequest("Backup", api.BackupRequest{AdminToken: c.token})
	if err != nil {
		return head, digest, err
	}
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return head, digest, fmt.Errorf("rpc: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelWrite(0)
		str.CancelRead(0)
	})
	defer stop()
	if _, err := str.Write(frame); err != nil {
		str.CancelRead(0)
		return head, digest, c.streamErr(ctx, err)
	}
	str.Close()
	head, digest, err = readBackup(bufio.NewReaderSize(str, 64<<10), w)
	if err != nil {
		str.CancelRead(0)
		if e := (*Error)(nil); errors.As(err, &e) || errors.Is(err, ErrBackupChecksum) {
			return head, digest, err
		}
		return head, digest, c.streamErr(ctx, err)
	}
	return head, digest, nil
}

// readBackup reads a streamed Backup answer from br: the head, the store's
// bytes (copied to w) and the digest, which it checks.
func readBackup(br *bufio.Reader, w io.Writer) (BackupResponse, [sha256.Size]byte, error) {
	var head BackupResponse
	var digest [sha256.Size]byte
	if err := readHead(br, &head); err != nil {
		return head, digest, err
	}
	sum := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(w, sum), br, int64(head.Size)); err != nil {
		return head, digest, fmt.Errorf("backup cut off: %w", err)
	}
	if _, err := io.ReadFull(br, digest[:]); err != nil {
		return head, digest, fmt.Errorf("backup cut off before its checksum: %w", err)
	}
	if n, _ := io.Copy(io.Discard, br); n != 0 {
		return head, digest, fmt.Errorf("malformed backup: %d bytes after the checksum", n)
	}
	if !bytes.Equal(sum.Sum(nil), digest[:]) {
		return head, digest, ErrBackupChecksum
	}
	return head, digest, nil
}

// readHead decodes the response envelope at the start of a streamed
// answer: {"Ok": head} or {"Err": error}.
func readHead(br *bufio.Reader, head *BackupResponse) error {
	return decodeAnswer(msgpack.NewDecoder(br), head)
}

// Reload asks the server to re-read its keys and certificates and, when
// level is not "", to set its log level.
func (c *Client) Reload(ctx context.Context, level string) (ReloadResponse, error) {
	var resp ReloadResponse
	err := c.Call(ctx, "Reload", ReloadRequest{AdminToken: c.token, LogLevel: level}, &resp)
	return resp, err
}
