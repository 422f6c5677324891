// Package register keeps a SIP trunk's registration (RFC 3261 section 10)
// alive on a registrar.
//
// It is written directly on sipgo's client rather than on diago's Register,
// which panics when the registrar does not answer, refreshes only from the
// Expires header and unregisters with "Contact: *" (removing every binding of
// the address-of-record, including other devices').
//
// A Registration sends REGISTER with From = To = the AOR, one Call-ID for its
// whole life and an increasing CSeq. It answers digest challenges (401 and
// 407), refreshes before the granted expiry, backs off exponentially on
// failure, honours 423 Min-Expires and Retry-After, and on Stop removes only
// its own Contact.
package register
