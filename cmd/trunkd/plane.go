package main

import (
	"context"

	"github.com/trunkd/trunkd/media"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// sipPlane is the SIP plane as control.Plane: media's Prepare returns its
// own *media.Change, which Go does not take for a control.Change result.
type sipPlane struct{ *media.Plane }

func (p sipPlane) Prepare(ctx context.Context, t *trunk.Trunk) (control.Change, error) {
	c, err := p.Plane.Prepare(ctx, t)
	if err != nil {
		return nil, err // not a nil *media.Change in a non-nil interface
	}
	return c, nil
}
