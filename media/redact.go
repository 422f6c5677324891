package media

import (
	"errors"
	"net/url"
)

// redactURL drops userinfo and query from a URL for logs: either may carry
// a credential.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// errWithoutURL unwraps a *url.Error, whose text repeats the full URL.
func errWithoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
