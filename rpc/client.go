package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/trunkd/trunkd/trunk"
	"github.com/vmihailenco/msgpack/v5"
)

// MaxResponseSize bounds a response the Client accepts.
const MaxResponseSize = 16 << 20

// Client is a connection to a trunkd admin server. It is safe for
// concurrent use: every call runs on its own stream of one QUIC connection.
type Client struct {
	conn  *quic.Conn
	tr    *quic.Transport
	token string
	org   string // sent as every request's org; "" for the token's own
}

// ForOrg returns a client on the same connection whose requests act for
// org (a personal token names the organization so; trunks:admin may name
// any). Close either to close the connection.
func (c *Client) ForOrg(org string) *Client {
	d := *c
	d.org = org
	return &d
}

// ClientTLSConfig returns a copy of base set up for the protocol: TLS 1.3
// and the trunkd/1 ALPN.
func ClientTLSConfig(base *tls.Config) *tls.Config {
	c := base.Clone()
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{ALPN}
	return c
}

// Dial connects to the server at addr (host:port, UDP) and returns a Client
// that sends token with every request.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, token string) (*Client, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	tr := &quic.Transport{Conn: udp}
	conf := &quic.Config{
		HandshakeIdleTimeout: 5 * time.Second,
		MaxIdleTimeout:       60 * time.Second,
		KeepAlivePeriod:      15 * time.Second,
	}
	tc := ClientTLSConfig(tlsConf)
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		tc.ServerName = host
	}
	conn, err := tr.Dial(ctx, raddr, tc, conf)
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	return &Client{conn: conn, tr: tr, token: token}, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	err := c.conn.CloseWithError(0, "")
	c.tr.Close()
	c.tr.Conn.Close()
	return err
}

// Call sends the request envelope {method: req} and decodes the Ok body
// into resp. An Err body is returned as *Error. It is the raw form of the
// typed methods below.
func (c *Client) Call(ctx context.Context, method string, req, resp any) error {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e) // after the frame, its buffer, is written
	frame, err := e.request(method, req)
	if err != nil {
		return err
	}
	body := bodies.Get().(*bytes.Buffer)
	defer putBody(body)
	var s listStream // a page is decoded while it arrives
	var feed func([]byte)
	page, _ := resp.(*ListTrunksResponse)
	if page != nil {
		feed = s.feed
	}
	if err := c.roundTrip(ctx, frame, body, feed); err != nil {
		return err
	}
	if page != nil && s.finish(body.Bytes(), page) {
		return nil
	}
	return decodeAnswerFrame(body.Bytes(), resp)
}

// CallRaw sends frame as it is on a new stream and returns the raw
// response frame. It is for tests and tools that build envelopes by hand.
func (c *Client) CallRaw(ctx context.Context, frame []byte) ([]byte, error) {
	var body bytes.Buffer
	err := c.roundTrip(ctx, frame, &body, nil)
	return body.Bytes(), err
}

// bodies holds the buffers responses (client) and requests (server) are
// read into: a decoded frame leaves no reference to its bytes (strings
// are copied out), so the frame's memory serves the next call instead of
// becoming garbage (a page of ListTrunks is tens of KiB).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer put back in bodies; a rare large
// answer (a 1000-trunk page with records) is left to the collector.
const maxPooledBody = 256 << 10

func putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		bodies.Put(b)
	}
}

// roundTrip sends frame on a new stream and reads the response frame
// into body, which must be empty. feed, unless nil, is given the bytes
// read so far after each read.
func (c *Client) roundTrip(ctx context.Context, frame []byte, body *bytes.Buffer, feed func([]byte)) error {
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("rpc: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelWrite(0)
		str.CancelRead(0)
	})
	defer stop()
	if _, err := str.Write(frame); err != nil {
		// A server that refuses a request part-way (ERR_TOO_LARGE) stops
		// reading it and answers; read that answer rather than reporting
		// the interrupted write. Without an answer the read fails too.
		if se := (*quic.StreamError)(nil); !errors.As(err, &se) || !se.Remote {
			str.CancelRead(0)
			return c.streamErr(ctx, err)
		}
	} else {
		str.Close()
	}
	if err := readAnswer(io.LimitReader(str, MaxResponseSize+1), body, feed); err != nil {
		return c.streamErr(ctx, err)
	}
	if body.Len() > MaxResponseSize {
		str.CancelRead(0)
		return fmt.Errorf("rpc: response larger than %d bytes", MaxResponseSize)
	}
	return nil
}

// readAnswer reads r into body until EOF, as body.ReadFrom does, and
// passes body's bytes to feed after each read when feed is not nil.
func readAnswer(r io.Reader, body *bytes.Buffer, feed func([]byte)) error {
	if feed == nil {
		_, err := body.ReadFrom(r)
		return err
	}
	for {
		if body.Available() < bytes.MinRead {
			body.Grow(16 << 10)
		}
		b := body.AvailableBuffer()
		n, err := r.Read(b[:cap(b)])
		body.Write(b[:n])
		if n > 0 {
			feed(body.Bytes())
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *Client) streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("rpc: %w", err)
}

// encodeRequest returns the request frame {method: req}.
func encodeRequest(method string, req any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	frame, err := e.request(method, req)
	return bytes.Clone(frame), err
}

// request encodes the request frame {method: req} into e's buffer.
func (e *encoder) request(method string, req any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.EncodeMapLen(1); err != nil {
		return nil, err
	}
	if err := e.enc.EncodeString(method); err != nil {
		return nil, err
	}
	if err := e.enc.Encode(req); err != nil {
		return nil, fmt.Errorf("rpc: encode %s request: %w", method, err)
	}
	return e.buf.Bytes(), nil
}

// decodeResponse decodes {"Ok": body} into resp or {"Err": e} into *Error.
func decodeResponse(frame []byte, resp any) error {
	if r, ok := resp.(*ListTrunksResponse); ok && r != nil && decodeListFrame(frame, r) {
		return nil // a frame checkFrame accepts
	}
	return decodeAnswerFrame(frame, resp)
}

// decodeAnswerFrame is decodeResponse through msgpack's decoder, after a
// check of the whole frame.
func decodeAnswerFrame(frame []byte, resp any) error {
	if err := checkFrame(frame); err != nil {
		return fmt.Errorf("rpc: malformed response: %w", err)
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(frame))
	err := decodeAnswer(dec, resp)
	if e := (*Error)(nil); err != nil && !errors.As(err, &e) {
		return fmt.Errorf("rpc: %w", err)
	}
	return err
}

// decodeAnswer reads one response envelope from dec: {"Ok": body} into
// resp (skipped when resp is nil), or {"Err": e} returned as *Error. The
// whole answers of decodeResponse and the head of a streamed Backup are
// read with it.
func decodeAnswer(dec *msgpack.Decoder, resp any) error {
	dec.SetCustomStructTag("json")
	n, err := dec.DecodeMapLen()
	if err != nil || n != 1 {
		return fmt.Errorf("malformed response: want a one-entry map")
	}
	tag, err := dec.DecodeString()
	if err != nil {
		return fmt.Errorf("malformed response: %w", err)
	}
	switch tag {
	case "Ok":
		if resp == nil {
			return dec.Skip()
		}
		if err := decodeBody(dec, resp); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		return nil
	case "Err":
		e := new(Error)
		if err := dec.Decode(e); err != nil {
			return fmt.Errorf("decode error response: %w", err)
		}
		return e
	}
	return fmt.Errorf("malformed response: unknown tag %q", tag)
}

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, "Ping", PingRequest{}, nil)
}

// AddTrunk creates t. It returns once the trunk is durable and live.
func (c *Client) AddTrunk(ctx context.Context, t *trunk.Trunk) error {
	return c.Call(ctx, "AddTrunk", TrunkRequest{AdminToken: c.token, Org: c.org, Trunk: *t}, nil)
}

// UpdateTrunk replaces the whole record of t.TrunkID with t.
func (c *Client) UpdateTrunk(ctx context.Context, t *trunk.Trunk) error {
	return c.Call(ctx, "UpdateTrunk", TrunkRequest{AdminToken: c.token, Org: c.org, Trunk: *t}, nil)
}

// RemoveTrunk removes the trunk id.
func (c *Client) RemoveTrunk(ctx context.Context, id string) error {
	return c.Call(ctx, "RemoveTrunk", TrunkIDRequest{AdminToken: c.token, Org: c.org, TrunkID: id}, nil)
}

// WriteTrunk sends an AddTrunk or UpdateTrunk (method) of req with the
// client's token: the whole record plus if_revision and keep_secrets.
func (c *Client) WriteTrunk(ctx context.Context, method string, req TrunkRequest) error {
	if method != "AddTrunk" && method != "UpdateTrunk" {
		return fmt.Errorf("rpc: WriteTrunk: %q is not a trunk write", method)
	}
	req.AdminToken, req.Org = c.token, c.org
	return c.Call(ctx, method, req, nil)
}

// RemoveTrunkIf removes the trunk id if it is at revision ifRevision
// (ERR_CONFLICT otherwise; 0 removes it whatever its revision).
func (c *Client) RemoveTrunkIf(ctx context.Context, id string, ifRevision uint64) error {
	return c.Call(ctx, "RemoveTrunk", TrunkIDRequest{AdminToken: c.token, Org: c.org, TrunkID: id, IfRevision: ifRevision}, nil)
}

// GetTrunkRecord returns the whole GetTrunk answer: live figures, the
// record without secret values, and its revision and timestamps.
func (c *Client) GetTrunkRecord(ctx context.Context, id string) (GetTrunkResponse, error) {
	var resp GetTrunkResponse
	err := c.Call(ctx, "GetTrunk", TrunkIDRequest{AdminToken: c.token, Org: c.org, TrunkID: id}, &resp)
	return resp, err
}

// GetTrunk returns the sanitised view of trunk id; found is false when no
// such trunk exists.
func (c *Client) GetTrunk(ctx context.Context, id string) (cfg TrunkConfig, found bool, err error) {
	var resp GetTrunkResponse
	err = c.Call(ctx, "GetTrunk", TrunkIDRequest{AdminToken: c.token, Org: c.org, TrunkID: id}, &resp)
	return resp.Config, resp.Found, err
}

// ListTrunksWhere returns the page req selects (its filters, limit and
// cursor); the token and org are filled in.
func (c *Client) ListTrunksWhere(ctx context.Context, req ListTrunksRequest) (ListTrunksResponse, error) {
	req.AdminToken, req.Org = c.token, c.org
	var resp ListTrunksResponse
	err := c.Call(ctx, "ListTrunks", req, &resp)
	return resp, err
}

// ListTrunks returns up to limit trunks after cursor ("" for the first
// page) and the cursor of the next page ("" at the end).
func (c *Client) ListTrunks(ctx context.Context, cursor string, limit int) ([]TrunkConfig, string, error) {
	if limit < 0 || limit > MaxListLimit {
		return nil, "", fmt.Errorf("rpc: limit %d outside 0-%d", limit, MaxListLimit)
	}
	var resp ListTrunksResponse
	err := c.Call(ctx, "ListTrunks", ListTrunksRequest{AdminToken: c.token, Org: c.org, Limit: uint32(limit), Cursor: cursor}, &resp)
	return resp.Trunks, resp.NextCursor, err
}

// ExplainMatch asks which trunk an INVITE from sourceIP arriving on
// listener ("ip:port") with Request-URI requestURI would belong to.
func (c *Client) ExplainMatch(ctx context.Context, sourceIP, listener, requestURI string) (ExplainMatchResponse, error) {
	var resp ExplainMatchResponse
	err := c.Call(ctx, "ExplainMatch", ExplainMatchRequest{AdminToken: c.token, Org: c.org, SourceIP: sourceIP, Listener: listener, RequestURI: requestURI}, &resp)
	return resp, err
}

// Dial places a call and returns once its INVITE has a final outcome: a
// call that was refused or not answered is a response with Answered false,
// not an error. req.AdminToken is filled in. ctx should allow the ring
// time (req.TimeoutSec, DefaultDialTimeoutSec when 0) plus
// DialDeadlineMargin and the round trip.
func (c *Client) Dial(ctx context.Context, req DialRequest) (DialResponse, error) {
	req.AdminToken, req.Org = c.token, c.org
	var resp DialResponse
	err := c.Call(ctx, "Dial", req, &resp)
	return resp, err
}

// Hangup ends the call callID, in either direction.
func (c *Client) Hangup(ctx context.Context, callID string) error {
	return c.Call(ctx, "Hangup", CallIDRequest{AdminToken: c.token, Org: c.org, CallID: callID}, nil)
}

// ListCalls returns the calls in flight on trunkID, or on every trunk when
// trunkID is "", oldest first.
func (c *Client) ListCalls(ctx context.Context, trunkID string) ([]CallInfo, error) {
	var resp ListCallsResponse
	err := c.Call(ctx, "ListCalls", ListCallsRequest{AdminToken: c.token, Org: c.org, TrunkID: trunkID}, &resp)
	return resp.Calls, err
}
