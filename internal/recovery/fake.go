package recovery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/history"
)

// MemRecorder is a [Recorder] in memory, for tests: it keeps every event and move, stamped
// with its clock.
type MemRecorder struct {
	mu     sync.Mutex
	now    func() time.Time
	events []history.Event
	moves  []history.Move
}

var _ Recorder = (*MemRecorder)(nil)

// NewMemRecorder returns an empty recorder stamping with now (time.Now if nil).
func NewMemRecorder(now func() time.Time) *MemRecorder {
	if now == nil {
		now = time.Now
	}
	return &MemRecorder{now: now}
}

func (r *MemRecorder) Record(_ context.Context, e history.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	// In time order, as the history reads them back: some are written after later ones.
	i := len(r.events)
	for i > 0 && r.events[i-1].Time.After(e.Time) {
		i--
	}
	r.events = slices.Insert(r.events, i, e)
	return nil
}

func (r *MemRecorder) RecordAll(ctx context.Context, events []history.Event) error {
	for _, e := range events {
		_ = r.Record(ctx, e)
	}
	return nil
}

func (r *MemRecorder) StartMove(_ context.Context, m history.Move) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Start.IsZero() {
		m.Start = r.now()
	}
	m.ID = int64(len(r.moves) + 1)
	m.Result, m.Attempts = history.MoveRunning, 1
	r.moves = append(r.moves, m)
	return m.ID, nil
}

func (r *MemRecorder) RetryMove(_ context.Context, id int64, to string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.move(id)
	if err != nil {
		return err
	}
	m.Attempts++
	if to != "" {
		m.To = to
	}
	return nil
}

func (r *MemRecorder) FinishMove(_ context.Context, id int64, out history.MoveOutcome) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.move(id)
	if err != nil {
		return err
	}
	if m.Result != history.MoveRunning {
		return fmt.Errorf("move %d: %w", id, history.ErrFinished)
	}
	m.Result, m.Error, m.End = out.Result, out.Error, out.End
	if m.End.IsZero() {
		m.End = r.now()
	}
	if out.To != "" {
		m.To = out.To
	}
	return nil
}

func (r *MemRecorder) move(id int64) (*history.Move, error) {
	if id < 1 || int(id) > len(r.moves) {
		return nil, fmt.Errorf("move %d: %w", id, history.ErrNotFound)
	}
	return &r.moves[id-1], nil
}

// Events returns the events recorded so far, of the given kinds (all when none).
func (r *MemRecorder) Events(kinds ...history.Kind) []history.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []history.Event
	for _, e := range r.events {
		if len(kinds) == 0 || slices.Contains(kinds, e.Kind) {
			out = append(out, e)
		}
	}
	return out
}

// Codes returns the reason codes of the events recorded so far, in order.
func (r *MemRecorder) Codes() []history.ReasonCode {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []history.ReasonCode
	for _, e := range r.events {
		out = append(out, e.Reason.Code)
	}
	return out
}

// Moves returns the moves recorded so far.
func (r *MemRecorder) Moves() []history.Move {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.moves)
}
