// Package record is the at-rest format of a trunk, shared by every store
// (bbolt today, etcd next) so that they read and write the same bytes.
//
// A record is one byte of format version, then the trunk as JSON with its
// wire field names, its secrets (sip_password, api_bearer_token) replaced
// by their sealed form (AES-256-GCM, nonce‖ciphertext, bound by additional
// data to the trunk id and the field name), and, from version 2 on, the
// store's bookkeeping: revision, created_at, updated_at.
//
// Version 1 records (no bookkeeping) still decode, with a zero trunk.Meta;
// a store migrates them when it opens (testdata/records holds frozen
// version 1 files that every reader must decode).
//
// Decode treats its input as semi-trusted: a corrupt value is an error,
// never a panic, and encoding/json allocates only in proportion to the
// bytes it reads.
package record
