package etcdtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// waitHealth polls url's /health until it reports healthy or ctx ends.
func waitHealth(ctx context.Context, url string) error {
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var h struct {
				Health string `json:"health"`
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.Health == "true" {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("health %q", h.Health)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
