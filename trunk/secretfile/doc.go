// Package secretfile writes the files trunkd generates on first start (the
// store's secret key, the JWT signing secret, the TLS key and certificate):
// created exclusively, so an existing file is never overwritten, synced, and
// with the directory entry synced too, so that a crash right after start-up
// cannot leave a secret that was used but is gone or empty on disk.
//
// It imports only the standard library, so every package of trunkd may use
// it.
package secretfile
