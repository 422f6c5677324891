package register

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// challenge is a digest challenge we keep answering until the registrar
// sends a new one, counting the nonce uses.
type challenge struct {
	chal  *digest.Challenge
	count int
}

// authHeader maps a challenge status to the header that answers it.
var authHeader = map[int]string{
	sip.StatusUnauthorized:      "Authorization",
	sip.StatusProxyAuthRequired: "Proxy-Authorization",
}

// challengeHeader maps a challenge status to the header that carries it.
var challengeHeader = map[int]string{
	sip.StatusUnauthorized:      "WWW-Authenticate",
	sip.StatusProxyAuthRequired: "Proxy-Authenticate",
}

// register sends one REGISTER asking for expires, answering each kind of
// challenge at most once. Credentials cached from an earlier challenge do
// not count: a challenge to them is simply answered.
func (r *Registration) register(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	answered := map[int]bool{}
	for {
		res, err := r.send(ctx, expires)
		if err != nil {
			return nil, err
		}
		code := res.StatusCode
		if _, ok := authHeader[code]; !ok {
			return res, nil
		}
		if answered[code] {
			return nil, fmt.Errorf("%s: bad credentials?", statusText(res))
		}
		answered[code] = true
		if err := r.learn(res); err != nil {
			return nil, err
		}
	}
}

// learn stores the digest challenge of a 401 or 407.
func (r *Registration) learn(res *sip.Response) error {
	name := challengeHeader[res.StatusCode]
	h := res.GetHeader(name)
	if h == nil {
		return fmt.Errorf("%s without %s", statusText(res), name)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return fmt.Errorf("%s: %w", statusText(res), err)
	}
	chal.Algorithm = strings.ToUpper(chal.Algorithm)
	if !digest.CanDigest(chal) {
		return fmt.Errorf("%s: unsupported challenge %q", statusText(res), h.Value())
	}
	r.challenges[authHeader[res.StatusCode]] = &challenge{chal: chal}
	return nil
}

// send sends one REGISTER transaction and waits for its final answer.
func (r *Registration) send(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	req, err := r.request(expires)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	res, err := r.client.Do(ctx, req)
	if err == nil {
		return res, nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sip.ErrTransactionTimeout) {
		return nil, fmt.Errorf("no response from %s", r.dest)
	}
	return nil, fmt.Errorf("REGISTER to %s: %w", r.dest, err)
}

// request builds the next REGISTER: same Call-ID and From tag, next CSeq.
func (r *Registration) request(expires time.Duration) (*sip.Request, error) {
	secs := int(expires.Round(time.Second) / time.Second)
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: r.aor.Host})
	req.SetDestination(r.dest)
	req.SetTransport(strings.ToUpper(r.cfg.Transport))

	from := &sip.FromHeader{DisplayName: r.cfg.DisplayName, Address: r.aor}
	from.Params.Add("tag", r.fromTag)
	to := &sip.ToHeader{DisplayName: r.cfg.DisplayName, Address: r.aor}
	callID := r.callID
	cseq := &sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER}
	r.cseq++
	contact := &sip.ContactHeader{Address: r.cfg.Contact}
	contact.Params.Add("expires", strconv.Itoa(secs))
	exp := sip.ExpiresHeader(secs)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(cseq)
	req.AppendHeader(contact)
	req.AppendHeader(&exp)
	if err := r.authorize(req); err != nil {
		return nil, err
	}
	req.SetBody(nil)
	return req, nil
}

// authorize adds credentials for every challenge we hold.
func (r *Registration) authorize(req *sip.Request) error {
	for name, c := range r.challenges {
		c.count++
		cred, err := digest.Digest(c.chal, digest.Options{
			Method:   string(sip.REGISTER),
			URI:      req.Recipient.String(),
			Count:    c.count,
			Username: r.cfg.Username,
			Password: r.cfg.Password,
		})
		if err != nil {
			return fmt.Errorf("digest: %w", err)
		}
		req.AppendHeader(sip.NewHeader(name, cred.String()))
	}
	return nil
}

// unregister removes our own binding: our exact Contact with expires=0.
func (r *Registration) unregister(ctx context.Context) error {
	res, err := r.register(ctx, 0)
	if err != nil {
		return fmt.Errorf("un-REGISTER: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("un-REGISTER: %s", statusText(res))
	}
	r.boundUntil = time.Time{}
	return nil
}
