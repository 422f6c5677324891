// Package trunk is trunkd's domain: the Trunk record with its defaults and
// validation, and the error codes the rest of the daemon speaks.
//
// It imports only the standard library and does no I/O. The adapters (rpc,
// store, media) depend on it; it depends on none of them.
package trunk
