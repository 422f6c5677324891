// Package status serves trunkd's live status page on the HTTP listener
// (--status-page): every trunk with its SIP, registration and breaker
// state, calls in flight against channel_limit, ASR / ACD / MOS / PDD
// with a sparkline of the quality window, and the calls in flight.
//
// The page shell (GET /) carries no data and needs no token. The browser
// asks for the live view (GET /status/view) every two seconds with the
// token the operator typed once, kept in the tab's sessionStorage and
// sent as "Authorization: Bearer" (polling, not server-sent events:
// EventSource cannot send that header, and a token in a URL ends up in
// logs). The view is HTML rendered here with html/template, which the
// page's few lines of JavaScript put in place: no build step, no
// client-side templating. It needs scope trunks:read and shows the
// organization the token acts for (trunks:admin: all of them; a token
// of several organizations names one with the page's ?org=). No
// credential of a trunk is ever rendered.
package status
