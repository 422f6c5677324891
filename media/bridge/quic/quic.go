package quic

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/trunkd/trunkd/media/bridge"
	"github.com/trunkd/trunkd/media/bridge/ws"
)

// Dialer connects to agents over QUIC.
type Dialer struct {
	Timeout time.Duration  // connect and handshake; 3 s
	RootCAs *x509.CertPool // nil uses the system roots
	Now     func() time.Time
}

// WriteTimeout bounds one stream write to the agent.
const WriteTimeout = 5 * time.Second

// Connect implements bridge.Connector: it dials, opens the stream and
// returns; Begin sends connected and start.
func (d *Dialer) Connect(ctx context.Context, t bridge.Target) (bridge.Agent, error) {
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "quic" || u.Host == "" {
		return nil, fmt.Errorf("%q is not a quic:// URL", t.URL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := &tls.Config{ServerName: host, NextProtos: []string{ALPN}, RootCAs: d.RootCAs, MinVersion: tls.VersionTLS13}
	conn, err := quicgo.DialAddr(ctx, net.JoinHostPort(host, port), tc, &quicgo.Config{
		EnableDatagrams: true, MaxIdleTimeout: 15 * time.Second, KeepAlivePeriod: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("agent %s unreachable: %w", u.Redacted(), err)
	}
	if !conn.ConnectionState().SupportsDatagrams.Remote {
		conn.CloseWithError(CloseProtocol, "datagrams required")
		return nil, fmt.Errorf("agent %s does not accept QUIC datagrams (RFC 9221)", u.Redacted())
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.CloseWithError(CloseProtocol, "")
		return nil, fmt.Errorf("agent %s: open stream: %w", u.Redacted(), err)
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	return &agent{conn: conn, st: st, r: bufio.NewReader(st), path: u.RequestURI(), t: t, now: now}, nil
}

// agent is one QUIC connection to an agent.
type agent struct {
	conn *quicgo.Conn
	st   *quicgo.Stream
	r    *bufio.Reader
	path string
	t    bridge.Target
	now  func() time.Time

	wmu     sync.Mutex
	seq     int64
	dseq    uint16
	stream  string
	call    string
	account string
}

// StartAuth are the fields start gains on QUIC, which has no HTTP headers.
type StartAuth struct {
	Authorization string `json:"authorization,omitempty"` // "Bearer <api_bearer_token>"
	Timestamp     string `json:"timestamp"`
	Signature     string `json:"signature,omitempty"` // as X-Trunkd-Signature
	Path          string `json:"path"`                // the URL's path and query
}

// startMessage is start with StartAuth.
type startMessage struct {
	ws.Message
	StartAuth
}

func (a *agent) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	_ = a.st.SetWriteDeadline(time.Now().Add(WriteTimeout))
	return WriteFrame(a.st, FrameJSON, b)
}

func (a *agent) next() string {
	a.seq++
	return strconv.FormatInt(a.seq, 10)
}

// Begin implements bridge.Agent.
func (a *agent) Begin(ctx context.Context, s bridge.Start) error {
	a.stream, a.call, a.account = s.StreamSID, s.CallSID, bridge.SID("AC", s.TrunkID)
	if err := a.writeJSON(ws.Message{Event: "connected", Protocol: "Call", Version: "1.0.0"}); err != nil {
		return err
	}
	params := map[string]string{"from_number": s.From, "to_number": s.To, "direction": s.Direction,
		"trunk_id": s.TrunkID, "sip_call_id": s.CallID}
	if s.AgentID != "" {
		params["agent_id"] = s.AgentID
	}
	ts := strconv.FormatInt(a.now().Unix(), 10)
	auth := StartAuth{Timestamp: ts, Path: a.path}
	if a.t.Token != "" {
		auth.Authorization = "Bearer " + a.t.Token
		auth.Signature = ws.Sign(a.t.Token, ts, s.CallID)
	}
	a.wmu.Lock()
	seq := a.next()
	a.wmu.Unlock()
	return a.writeJSON(startMessage{Message: ws.Message{Event: "start", SequenceNumber: seq, StreamSID: a.stream, Start: &ws.StartBody{
		AccountSID: a.account, StreamSID: a.stream, CallSID: a.call, Tracks: []string{"inbound"}, CustomParameters: params,
		MediaFormat: ws.MediaFormat{Encoding: "audio/x-l16", SampleRate: bridge.Rate, Channels: 1}, Profile: ALPN,
	}}, StartAuth: auth})
}

// Send implements bridge.Agent: caller audio as a datagram, the rest as
// JSON frames on the stream.
func (a *agent) Send(ctx context.Context, m bridge.Out) error {
	a.wmu.Lock()
	seq := a.next()
	a.wmu.Unlock()
	base := ws.Message{SequenceNumber: seq, StreamSID: a.stream}
	switch m.Kind {
	case bridge.OutAudio:
		a.dseq++
		return a.conn.SendDatagram(Datagram(a.dseq, uint32(m.TimeMS*bridge.Rate/1000), L16(m.Audio)))
	case bridge.OutDTMF:
		base.Event, base.DTMF = "dtmf", &ws.DTMFBody{Track: "inbound_track", Digit: m.Digit}
	case bridge.OutMark:
		st, ms := "played", m.Mark.PlayedMS
		if m.Mark.Cleared {
			st = "cleared"
		}
		base.Event, base.Mark = "mark", &ws.MarkBody{Name: m.Mark.Name, State: st, PlayedMS: &ms}
	case bridge.OutBargein:
		b := m.Bargein
		base.Event, base.Bargein = "bargein", &ws.Bargein{Mode: b.Mode, AtMS: b.AtMS, PlayedMS: b.PlayedMS}
	case bridge.OutSpeech:
		st := "stopped"
		if m.Speaking {
			st = "started"
		}
		base.Event, base.Speech = "speech", &ws.Speech{State: st}
	case bridge.OutStop:
		base.Event, base.Stop = "stop", &ws.StopBody{AccountSID: a.account, CallSID: a.call}
	default:
		return fmt.Errorf("unknown message kind %d", m.Kind)
	}
	return a.writeJSON(base)
}

// Recv implements bridge.Agent.
func (a *agent) Recv(ctx context.Context) (bridge.In, error) {
	typ, b, err := ReadFrame(a.r)
	if err != nil {
		if errors.Is(err, errFrame) {
			a.conn.CloseWithError(CloseProtocol, err.Error())
		}
		return bridge.In{}, err
	}
	in, err := parse(typ, b)
	if err != nil {
		a.conn.CloseWithError(CloseProtocol, err.Error())
		return bridge.In{}, fmt.Errorf("agent protocol error: %w", err)
	}
	return in, nil
}

// parse reads one frame from the agent.
func parse(typ byte, b []byte) (bridge.In, error) {
	switch typ {
	case FrameAudio:
		pcm, err := PCM(b)
		return bridge.In{Kind: bridge.InAudio, Audio: pcm}, err
	case FrameJSON:
	default:
		return bridge.In{}, fmt.Errorf("unknown frame type %d", typ)
	}
	return ws.ParseMessage(b, PCM, true) // the QUIC agent speaks trunkd's protocol
}

// Close implements bridge.Agent.
func (a *agent) Close(normal bool, reason string) error {
	code := quicgo.ApplicationErrorCode(CloseNormal)
	if !normal {
		code = CloseProtocol
	}
	a.wmu.Lock()
	_ = a.st.Close() // FIN after what is queued (stop)
	a.wmu.Unlock()
	if normal {
		// Let stop arrive: the agent closes the connection when it has
		// read it; CloseWithError would discard data in flight.
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-a.conn.Context().Done():
			return nil
		case <-t.C:
		}
	}
	if len(reason) > 120 {
		reason = reason[:120]
	}
	return a.conn.CloseWithError(code, reason)
}

// closeWait is how long a normal close waits for the agent to close.
const closeWait = time.Second
