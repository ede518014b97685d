package recovery

import (
	"context"

	"github.com/computeha/computeha/internal/history"
)

// Recorder keeps what a recovery decides and does: the incident of the history
// ([*history.Incident] is one), or [MemRecorder] in tests.
type Recorder interface {
	Record(ctx context.Context, e history.Event) error
	// RecordAll records events at once: one durable write for all.
	RecordAll(ctx context.Context, events []history.Event) error
	StartMove(ctx context.Context, m history.Move) (int64, error)
	RetryMove(ctx context.Context, id int64, to string) error
	FinishMove(ctx context.Context, id int64, out history.MoveOutcome) error
}

var _ Recorder = (*history.Incident)(nil)

// nopRecorder records nothing.
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, history.Event) error                  { return nil }
func (nopRecorder) RecordAll(context.Context, []history.Event) error             { return nil }
func (nopRecorder) StartMove(context.Context, history.Move) (int64, error)       { return 0, nil }
func (nopRecorder) RetryMove(context.Context, int64, string) error               { return nil }
func (nopRecorder) FinishMove(context.Context, int64, history.MoveOutcome) error { return nil }
