// Package rest is the admin protocol over HTTP + JSON: a thin codec over
// package api, as package rpc is over QUIC + MessagePack. It routes, reads
// the bearer token from the Authorization header, decodes JSON strictly
// into api's DTOs, calls api.Handler, and maps api's wire codes to HTTP
// statuses; that mapping (Status) lives here and nowhere else. Tokens,
// validation and error texts are api's, auth's and control's, so both
// faces refuse the same requests with the same codes and messages.
//
//	GET    /ping          Ping, no token                 204
//	GET    /trunks        ListTrunks (?limit=&cursor=)   200 api.ListTrunksResponse
//	POST   /trunks        AddTrunk, body a trunk         201
//	GET    /trunks/{id}   GetTrunk                       200 api.TrunkConfig, or 404
//	PUT    /trunks/{id}   UpdateTrunk, body a trunk      204
//	DELETE /trunks/{id}   RemoveTrunk                    204
//
// An error is its status with the JSON body {"code", "message", "field"}
// of api.Error. The daemon does not serve it yet; BenchmarkHTTPJSON in
// cmd/trunkd measures it against the QUIC face.
package rest
