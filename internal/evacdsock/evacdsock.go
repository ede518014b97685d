// Package evacdsock is the evacuation daemon's health socket as its clients see it: what the
// daemon answers and how to ask. The OCF agent's monitor and `computeha status` use it
// without linking the daemon itself.
package evacdsock

import (
	"context"
	"time"

	"github.com/computeha/computeha/internal/healthsock"
)

// DefaultSocket is where the daemon answers unless told otherwise.
const DefaultSocket = "/run/computeha/evacd.sock"

// Health is the daemon's answer: one JSON line.
type Health struct {
	OK      bool              `json:"ok"`
	Owner   string            `json:"owner"`
	Since   time.Time         `json:"since"`
	Jobs    map[string]string `json:"jobs"` // host → what its recovery is doing
	LastErr string            `json:"last_error,omitempty"`
}

// Ask reads the daemon's health from its socket at path.
func Ask(ctx context.Context, path string) (Health, error) {
	return healthsock.Ask[Health](ctx, path)
}
