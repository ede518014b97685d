package recovery

import (
	"context"
)

// none leaves a VM where it is: the recovery class an operator gives VMs that must not be
// touched. The decision is recorded; nothing is asked of Nova.
type none struct{}

func (none) Name() MethodName                              { return None }
func (none) ByMigrations() bool                            { return false }
func (none) Placed() bool                                  { return false }
func (none) Start(context.Context, *run, *move, int) error { return nil }
func (none) Check(_ context.Context, _ *run, _ *move, o observation) (bool, string, error) {
	s := o.server
	return true, s.Host, nil
}
