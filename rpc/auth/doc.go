// Package auth checks the admin JSON Web Tokens: HS256/384/512 with a
// shared secret, RS/PS, ES and EdDSA with public keys (chosen by kid, or
// by algorithm), exp required, iss and aud when configured, and a
// space-separated "scope" claim granting ScopeRead, ScopeManage or
// ScopeCalls. Verified tokens are cached until they expire, so a client
// sending one token per request pays for one signature check.
//
// Authorize's refusals are *Error values of two kinds, ErrUnauthenticated
// and ErrPermissionDenied; the faces map them to their wire codes (rpc/api)
// or HTTP statuses (rpc/rest). auth knows nothing of either.
package auth
