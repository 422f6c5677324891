package sipplane

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
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
