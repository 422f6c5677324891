package main

import (
	"context"

	"github.com/trunkd/trunkd/media/sipplane"
	"github.com/trunkd/trunkd/trunk"
	"github.com/trunkd/trunkd/trunk/control"
)

// sipPlane is the SIP plane as control.Plane: sipplane.Plane.Prepare returns its
// own *sipplane.Change, which Go does not take for a control.Change result.
type sipPlane struct{ *sipplane.Plane }

func (p sipPlane) Prepare(ctx context.Context, t *trunk.Trunk) (control.Change, error) {
	c, err := p.Plane.Prepare(ctx, t)
	if err != nil {
		return nil, err // not a nil *sipplane.Change in a non-nil interface
	}
	return c, nil
}
