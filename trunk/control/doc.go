// Package control is the trunk service every face calls: the admin RPC
// today, REST and a reconciler later. It owns the order of a trunk write,
//
//	Normalize + Validate -> per-trunk lock -> Plane.Prepare -> Store write -> Commit (or Abort)
//
// so a write the SIP plane refuses is never stored, and one the store
// refuses is undone on the SIP plane, all before the write is
// acknowledged. It also loads the stored trunks into the SIP plane at
// start-up, and forwards the call operations (Dial, Hangup, ListCalls,
// ExplainMatch, TrunkStatus) to the plane, so that a face holds one
// *Service and nothing else.
//
// control declares what it needs, Store and Plane, and imports only the
// standard library and package trunk: the bbolt store and the diago SIP
// plane satisfy them in cmd/trunkd, and package controltest has in-memory
// fakes of both for tests. Three more are optional and type-asserted:
// a Store that is a Snapshotter can be backed up online (Snapshot), a
// Plane that is a QualityHistory gives per-bucket quality figures, and a
// Reloader set with SetReloader answers Reload; without them those
// operations answer EUNAVAILABLE (or nothing, for the figures).
//
// Where it can hurt: Prepare may take seconds (a listener bind, DNS
// lookups) and runs under the trunk's lock, so a slow carrier domain
// delays other writes to the same trunk, never writes to other trunks.
package control
