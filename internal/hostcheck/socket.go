package hostcheck

import (
	"context"

	"github.com/computeha/computeha/internal/healthsock"
)

// AskHealth reads a hostcheck process's health from its socket. An error means the process
// did not answer (not running, or hung).
func AskHealth(ctx context.Context, path string) (Health, error) {
	return healthsock.Ask[Health](ctx, path)
}
