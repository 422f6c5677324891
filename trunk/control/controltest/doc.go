// Package controltest has in-memory fakes of what package control
// declares, for the tests of control and of the faces in front of it:
// MemStore (a Store with the bbolt store's messages), and Plane (a SIP
// plane made of FakeCalls, FakeStatus and a match function, recording the
// Prepare/Commit/Abort it sees).
//
// The fakes live here rather than in rpc/rpctest so that package rpc's own
// tests can use them: rpctest imports rpc, and a package's tests cannot
// import a package that imports it.
package controltest
