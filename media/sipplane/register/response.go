package register

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// statusText is a response's status line, e.g. "408 Request Timeout".
func statusText(res *sip.Response) string {
	code := strconv.Itoa(res.StatusCode)
	reason := strings.TrimSpace(res.Reason)
	if reason == "" || strings.HasPrefix(reason, code) {
		return strings.TrimSpace(code + " " + strings.TrimPrefix(reason, code))
	}
	return code + " " + reason
}

// grantedExpiry is the expiry of a 2xx: our Contact's expires parameter,
// else the Expires header, else what we asked for.
func grantedExpiry(res *sip.Response, ours sip.Uri, asked time.Duration) time.Duration {
	if d, ok := contactExpiry(res, ours); ok {
		return d
	}
	if h := res.GetHeader("Expires"); h != nil {
		if d, ok := seconds(h.Value()); ok {
			return d
		}
	}
	return asked
}

// contactExpiry finds our Contact in a 2xx, which lists every binding of
// the AOR. A lone Contact is taken as ours, since registrars may rewrite it
// (NAT fix-ups).
func contactExpiry(res *sip.Response, ours sip.Uri) (time.Duration, bool) {
	var contacts []*sip.ContactHeader
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			contacts = append(contacts, c)
		}
	}
	for _, c := range contacts {
		if sameContact(c.Address, ours) {
			return paramExpiry(c)
		}
	}
	if len(contacts) == 1 {
		return paramExpiry(contacts[0])
	}
	return 0, false
}

func paramExpiry(c *sip.ContactHeader) (time.Duration, bool) {
	v, ok := c.Params.Get("expires")
	if !ok {
		return 0, false
	}
	return seconds(v)
}

// sameContact compares the parts of a contact URI that identify a binding.
func sameContact(a, b sip.Uri) bool {
	port := func(u sip.Uri) int {
		if u.Port == 0 {
			return 5060
		}
		return u.Port
	}
	return a.User == b.User && strings.EqualFold(a.Host, b.Host) && port(a) == port(b)
}

// minExpires reads a 423's Min-Expires header.
func minExpires(res *sip.Response) time.Duration {
	h := res.GetHeader("Min-Expires")
	if h == nil {
		return 0
	}
	d, _ := seconds(h.Value())
	return d
}

// retryAfter reads a Retry-After header such as "120 (busy);duration=60".
func retryAfter(res *sip.Response) time.Duration {
	h := res.GetHeader("Retry-After")
	if h == nil {
		return 0
	}
	v := strings.TrimSpace(h.Value())
	if i := strings.IndexAny(v, " ;("); i >= 0 {
		v = v[:i]
	}
	d, _ := seconds(v)
	return d
}

// seconds parses a non-negative delta-seconds value.
func seconds(v string) (time.Duration, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}
