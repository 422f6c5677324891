// Package rest is the admin protocol over HTTPS + JSON: a thin codec over
// package api, as package rpc is over QUIC + MessagePack. It routes, reads
// the bearer token from the Authorization header and the organization
// from X-Trunkd-Org, decodes JSON strictly into api's DTOs, calls
// api.Handler, and maps api's wire codes to HTTP statuses; that mapping
// (Status) lives here and nowhere else. Tokens, validation and error texts
// are api's, auth's and control's, so both faces refuse the same requests
// with the same codes and messages.
//
//	GET    /ping                          Ping, no token                     204
//	GET    /openapi.json                  this list, as OpenAPI 3.1          200
//	GET    /v1/trunks                     ListTrunks (?limit, cursor, filters) 200 api.ListTrunksResponse
//	POST   /v1/trunks                     AddTrunk, body a Record            201 Record, ETag
//	GET    /v1/trunks/{id}                GetTrunk                           200 Record, ETag = revision; 404
//	PUT    /v1/trunks/{id}                UpdateTrunk (If-Match, ?keep_secrets) 204; 412 on a stale If-Match
//	DELETE /v1/trunks/{id}                RemoveTrunk (If-Match)             204
//	GET    /core/trunks                   the BYOC list                      200 CoreList
//	POST   /core/trunks                   BYOC create, id generated          201 CoreTrunk
//	GET    /core/trunks/{id}              BYOC read                          200 CoreTrunk; 404
//	PUT    /core/trunks/{id}              BYOC replace (other fields kept)   200 CoreTrunk; 400 when managed
//	DELETE /core/trunks/{id}              BYOC delete                        204; 400 when managed
//	POST, DELETE /core/agents/{id}/deploy-as-sip   {uri, deployed}; 404 unknown agent, 409 no published version
//
// An error is its status with the JSON body {"code", "message", "field"}
// of api.Error. Listen serves a Server over HTTP/1.1 and HTTP/2 on TCP and
// HTTP/3 on UDP at the same port; trunkd does so with --http-listen.
package rest
