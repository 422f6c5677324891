package sipplane

import (
	"bytes"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseCrypto(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 30))
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 29))
	for _, tc := range []struct {
		in    string
		suite string // "" = refused
		mki   []byte
	}{
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key, "AES_CM_128_HMAC_SHA1_80", nil},
		{"2 AES_CM_128_HMAC_SHA1_32 inline:" + key + "|2^31", "AES_CM_128_HMAC_SHA1_32", nil},
		{"3 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:1", "AES_CM_128_HMAC_SHA1_80", []byte{1}},
		{"4 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|258:2", "AES_CM_128_HMAC_SHA1_80", []byte{1, 2}},
		{"5 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1048576", "AES_CM_128_HMAC_SHA1_80", nil},
		{"6 AES_CM_128_HMAC_SHA1_80 inline:" + key + " WSH=64", "AES_CM_128_HMAC_SHA1_80", nil},
		{"7 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(key, "="), "AES_CM_128_HMAC_SHA1_80", nil},
		{"8 AES_CM_128_HMAC_SHA1_80 inline:" + key + ";inline:" + key + "|2^20|2:1", "AES_CM_128_HMAC_SHA1_80", nil},
		{"1 AES_256_CM_HMAC_SHA1_80 inline:" + key, "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + short, "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:!!!", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 " + key, "", nil},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + key, "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^99", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1:9", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|256:1", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|1:1|2:1", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + " UNENCRYPTED_SRTP", "", nil},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + key + "|2^20|1:1|x", "", nil},
	} {
		c, err := parseCrypto(tc.in)
		if tc.suite == "" {
			if err == nil {
				t.Errorf("parseCrypto(%q) = %v; want an error", tc.in, c)
			} else if strings.Contains(err.Error(), key[:12]) {
				t.Errorf("parseCrypto(%q) error %q shows the key", tc.in, err)
			}
			continue
		}
		if err != nil || c.suite.name != tc.suite || !bytes.Equal(c.mki, tc.mki) || len(c.key) != 30 {
			t.Errorf("parseCrypto(%q) = %v, mki %v, %v; want %s, mki %v", tc.in, c, c.mkiOrNil(), err, tc.suite, tc.mki)
		}
		if strings.Contains(c.String(), key[:12]) {
			t.Errorf("String() %q shows the key", c.String())
		}
	}
}

func (c *sdesCrypto) mkiOrNil() []byte {
	if c == nil {
		return nil
	}
	return c.mki
}

func TestPlainAndSecureSDP(t *testing.T) {
	k, err := newLocalCrypto(3, suites[1])
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
	sec := secureSDP(plain, k)
	if !bytes.Contains(sec, []byte("m=audio 4000 RTP/SAVP 0\r\n")) || !bytes.HasSuffix(sec, []byte(k.attribute()+"\r\n")) {
		t.Fatalf("secureSDP = %q; want RTP/SAVP and the key at the end", sec)
	}
	if got := plainSDP(sec); !bytes.Equal(got, plain) {
		t.Fatalf("plainSDP(secureSDP(x)) = %q; want %q", got, plain)
	}
}

// TestSRTPConnDropsAnyGarbage sends packets that fail SRTP in different
// ways (short, bad tag, RTCP-looking) to a keyed socket: each is dropped
// and counted, and the socket keeps working.
func TestSRTPConnDropsAnyGarbage(t *testing.T) {
	socks, err := bindPair([]byte{127, 0, 0, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer socks.rtp.Close()
	defer socks.rtcp.Close()
	k1, _ := newLocalCrypto(1, suites[0])
	k2, _ := newLocalCrypto(1, suites[1])
	if err := socks.secure(k1, k2); err != nil {
		t.Fatal(err)
	}
	tx, err := net.Dial("udp", socks.rtcp.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	junk := [][]byte{{1, 2, 3}, bytes.Repeat([]byte{0x80}, 16), append([]byte{0x80, 200, 0, 6}, bytes.Repeat([]byte{9}, 40)...), bytes.Repeat([]byte{0x81, 0xc9}, 100)}
	for _, j := range junk {
		if _, err := tx.Write(j); err != nil {
			t.Fatal(err)
		}
	}
	// A good packet after the junk is read; the junk is not.
	good, _ := k2.context()
	pkt := append([]byte{0x80, 200, 0, 6, 0, 0, 0, 1}, make([]byte, 20)...)
	enc, err := good.EncryptRTCP(nil, pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Write(enc); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = socks.rtcp.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := socks.rtcp.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], pkt) {
		t.Fatalf("ReadFrom = %d bytes, %v; want the good packet", n, err)
	}
	if got := socks.dropped(); got != int64(len(junk)) {
		t.Errorf("dropped %d; want %d", got, len(junk))
	}
	if socks.lastError() == nil {
		t.Error("lastError() = nil after drops")
	}
}
