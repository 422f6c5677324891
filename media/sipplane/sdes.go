package sipplane

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// SDES (RFC 4568): SRTP keys exchanged in a=crypto lines of the SDP. trunkd
// does SRTP itself (srtpconn.go) rather than through diago's
// MediaSession.SecureRTP, which knows one suite, refuses the |2^31 and MKI
// forms, falls back to plain RTP silently as offerer, answers RTP/AVP with
// RTP/SAVP and is dropped by Fork on a re-INVITE. diago only ever sees
// plain RTP/AVP SDP: plainSDP strips what it would act on, secureSDP adds
// our keys to what it writes.

// srtpSuite is an SRTP crypto suite trunkd speaks.
type srtpSuite struct {
	name    string
	profile srtp.ProtectionProfile
}

// suites are the suites trunkd offers and accepts, in order of
// preference. Both use a 16-byte key and a 14-byte salt.
var suites = []srtpSuite{
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32},
}

const (
	srtpKeyLen  = 16
	srtpSaltLen = 14
	maxMKILen   = 4 // bytes; RFC 4568 allows up to 128, nobody uses more than 4
)

func suiteByName(name string) (srtpSuite, bool) {
	for _, s := range suites {
		if s.name == name {
			return s, true
		}
	}
	return srtpSuite{}, false
}

// sdesCrypto is one a=crypto line: a tag, a suite and the master key and
// salt of the sender of the SDP. String and errors never show the key.
type sdesCrypto struct {
	tag   int
	suite srtpSuite
	key   []byte // master key || master salt, 30 bytes
	mki   []byte // MKI carried in each packet; nil without
}

func (c *sdesCrypto) String() string {
	return fmt.Sprintf("crypto tag %d %s", c.tag, c.suite.name)
}

// newLocalCrypto makes a fresh key for suite under tag.
func newLocalCrypto(tag int, suite srtpSuite) (*sdesCrypto, error) {
	key := make([]byte, srtpKeyLen+srtpSaltLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &sdesCrypto{tag: tag, suite: suite, key: key}, nil
}

// withTag is c answering the offer's crypto tag.
func (c *sdesCrypto) withTag(tag int) *sdesCrypto {
	d := *c
	d.tag = tag
	return &d
}

// attribute is c as an SDP attribute line (no MKI: ours never has one).
func (c *sdesCrypto) attribute() string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s", c.tag, c.suite.name, base64.StdEncoding.EncodeToString(c.key))
}

// context is an SRTP context keyed with c, for one direction of one
// socket (contexts are not safe for concurrent use).
func (c *sdesCrypto) context() (*srtp.Context, error) {
	var opts []srtp.ContextOption
	if len(c.mki) > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(c.mki))
	}
	return srtp.CreateContext(c.key[:srtpKeyLen], c.key[srtpKeyLen:], c.suite.profile, opts...)
}

var errUnknownSuite = errors.New("unknown crypto suite")

// parseCrypto parses the value of an a=crypto attribute (after
// "crypto:"): tag, suite, inline key with optional |lifetime and |MKI:len,
// optional session parameters. Errors quote the suite, never the key.
func parseCrypto(val string) (*sdesCrypto, error) {
	f := strings.Fields(val)
	if len(f) < 3 {
		return nil, errors.New("a=crypto needs a tag, a suite and a key")
	}
	tag, err := strconv.ParseUint(f[0], 10, 31)
	if err != nil || len(f[0]) > 9 {
		return nil, fmt.Errorf("a=crypto tag %q is not a number", clip(f[0]))
	}
	suite, ok := suiteByName(f[1])
	if !ok {
		return nil, fmt.Errorf("%w %q", errUnknownSuite, clip(f[1]))
	}
	for _, p := range f[3:] {
		// Session parameters change how SRTP runs (UNENCRYPTED_SRTP, KDR,
		// FEC_ORDER ...): refuse the line rather than get it wrong. WSH is
		// only a hint.
		if !strings.HasPrefix(p, "WSH=") {
			return nil, fmt.Errorf("a=crypto session parameter %q is not supported", clip(p))
		}
	}
	c := &sdesCrypto{tag: int(tag), suite: suite}
	// Several keys (;-separated) are for rekeying by MKI: the first is
	// the one in use.
	first, _, _ := strings.Cut(f[2], ";")
	inline, ok := strings.CutPrefix(first, "inline:")
	if !ok {
		return nil, errors.New("a=crypto key is not an inline key")
	}
	parts := strings.Split(inline, "|")
	if len(parts) > 3 {
		return nil, errors.New("a=crypto key has too many | parameters")
	}
	c.key, err = base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		// Some peers leave out the padding.
		c.key, err = base64.RawStdEncoding.DecodeString(parts[0])
	}
	if err != nil || len(c.key) != srtpKeyLen+srtpSaltLen {
		return nil, fmt.Errorf("a=crypto %s key is not %d bytes of base64", suite.name, srtpKeyLen+srtpSaltLen)
	}
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") {
			if c.mki != nil {
				return nil, errors.New("a=crypto key has two MKI parameters")
			}
			if c.mki, err = parseMKI(p); err != nil {
				return nil, err
			}
			continue
		}
		if err := checkLifetime(p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkLifetime checks a key lifetime: 2^N or a decimal count of
// packets. trunkd does not rekey; calls are far shorter than 2^31 packets.
func checkLifetime(p string) error {
	if exp, ok := strings.CutPrefix(p, "2^"); ok {
		if n, err := strconv.Atoi(exp); err == nil && n >= 1 && n <= 48 {
			return nil
		}
	} else if n, err := strconv.ParseUint(p, 10, 64); err == nil && n > 0 {
		return nil
	}
	return fmt.Errorf("a=crypto key lifetime %q is not 2^N or a number", clip(p))
}

// parseMKI parses "value:length" into the MKI bytes sent in each packet.
func parseMKI(p string) ([]byte, error) {
	v, l, _ := strings.Cut(p, ":")
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > maxMKILen {
		return nil, fmt.Errorf("a=crypto MKI length %q is not 1 to %d bytes", clip(l), maxMKILen)
	}
	val, err := strconv.ParseUint(v, 10, 8*n)
	if err != nil {
		return nil, fmt.Errorf("a=crypto MKI value %q does not fit %d bytes", clip(v), n)
	}
	mki := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		mki[i] = byte(val)
		val >>= 8
	}
	return mki, nil
}

// plainSDP is body for diago: m=audio's RTP/SAVP turned into RTP/AVP and
// the a=crypto lines dropped, so diago negotiates codecs and addresses and
// leaves SRTP to trunkd.
func plainSDP(body []byte) []byte {
	var out bytes.Buffer
	for _, raw := range bytes.SplitAfter(body, []byte("\n")) {
		line := bytes.TrimRight(raw, "\r\n")
		switch {
		case bytes.HasPrefix(line, []byte("a=crypto:")):
			continue
		case bytes.HasPrefix(line, []byte("m=audio ")):
			raw = bytes.Replace(raw, []byte(" RTP/SAVP "), []byte(" RTP/AVP "), 1)
		}
		out.Write(raw)
	}
	return out.Bytes()
}

// secureSDP is diago's plain SDP turned into our SRTP offer or answer:
// RTP/SAVP with one a=crypto line per key, after the m=audio section's
// other attributes.
func secureSDP(body []byte, keys ...*sdesCrypto) []byte {
	body = bytes.Replace(body, []byte(" RTP/AVP "), []byte(" RTP/SAVP "), 1)
	var out bytes.Buffer
	out.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		out.WriteString("\r\n")
	}
	for _, k := range keys {
		out.WriteString(k.attribute())
		out.WriteString("\r\n")
	}
	return out.Bytes()
}
