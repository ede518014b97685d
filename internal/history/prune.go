package history

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/clock"
)

// PruneEvery is how often [Store.KeepPruned] deletes what history.retention no longer keeps;
// the first pruning comes PruneDelay after it begins, so that it never competes with a
// recovery the daemon's start resumes.
const (
	PruneEvery = 24 * time.Hour
	PruneDelay = 5 * time.Minute
)

// KeepPruned deletes what ended more than keep ago, every PruneEvery, until ctx ends. A failed
// pruning is logged and tried again at the next one: the records stay, nothing is lost.
func (s *Store) KeepPruned(ctx context.Context, c clock.Clock, keep time.Duration, log *slog.Logger) {
	c = clock.Or(c)
	wait := PruneDelay
	for c.Sleep(ctx, wait) == nil {
		wait = PruneEvery
		before := c.Now().Add(-keep)
		p, err := s.Prune(ctx, before)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("pruning the history failed; tried again later", "before", before, "error", err)
		case p != (Pruned{}):
			log.Info("pruned the history", "before", before, "incidents", p.Incidents, "events", p.Events, "moves", p.Moves)
		}
	}
}

// Pruned counts what Prune deleted.
type Pruned struct {
	Incidents, Events, Moves int64
}

// pruneBatch bounds the rows one pruning transaction deletes, so that
// pruning a long history never holds the database for long.
const pruneBatch = 500

// Prune deletes what ended before the cutoff: each incident closed before
// it, with all its events and moves, and the events and finished moves
// that belong to no incident (or to none recorded) and are older. An open incident and
// everything of it are kept whatever their age, as is a move still
// running: an availability report never loses an outage that has not
// ended. Each batch is one transaction, so an interrupted pruning leaves
// whole incidents.
func (s *Store) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	if before.IsZero() {
		return p, fmt.Errorf("%w: pruning needs a cutoff", ErrInvalid)
	}
	cut := micro(before)
	for {
		ids, err := s.pruneIDs(ctx, `SELECT id FROM incidents WHERE closed_us IS NOT NULL AND closed_us < ? ORDER BY closed_us LIMIT ?`, cut)
		if err != nil {
			return p, err
		}
		if len(ids) == 0 {
			break // no (more) old incident: the loose records still are
		}
		in, args := inList(ids)
		err = s.pruneTx(ctx, func(tx *sql.Tx) error {
			for _, st := range []struct {
				n   *int64
				sql string
			}{
				{&p.Moves, `DELETE FROM moves WHERE incident IN ` + in},
				{&p.Events, `DELETE FROM events WHERE incident IN ` + in},
				{&p.Incidents, `DELETE FROM incidents WHERE id IN ` + in},
			} {
				n, err := execCount(ctx, tx, st.sql, args...)
				if err != nil {
					return err
				}
				*st.n += n
			}
			return nil
		})
		if err != nil {
			return p, err
		}
		if len(ids) < pruneBatch {
			break
		}
	}
	for _, loose := range []struct {
		n            *int64
		table, query string
	}{
		{&p.Events, "events", `SELECT id FROM events WHERE time_us < ?
			AND (incident = '' OR incident NOT IN (SELECT id FROM incidents)) ORDER BY id LIMIT ?`},
		{&p.Moves, "moves", `SELECT id FROM moves WHERE end_us IS NOT NULL AND end_us < ?
			AND (incident = '' OR incident NOT IN (SELECT id FROM incidents)) ORDER BY id LIMIT ?`},
	} {
		for {
			ids, err := s.pruneIDs(ctx, loose.query, cut)
			if err != nil || len(ids) == 0 {
				if err != nil {
					return p, err
				}
				break
			}
			in, args := inList(ids)
			err = s.pruneTx(ctx, func(tx *sql.Tx) error {
				n, err := execCount(ctx, tx, `DELETE FROM `+loose.table+` WHERE id IN `+in, args...)
				*loose.n += n
				return err
			})
			if err != nil {
				return p, err
			}
			if len(ids) < pruneBatch {
				break
			}
		}
	}
	return p, nil
}

// pruneIDs reads one batch of ids (query takes the cutoff and the batch size).
func (s *Store) pruneIDs(ctx context.Context, query string, cut int64) ([]any, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, query, cut, pruneBatch)
	if err != nil {
		return nil, fmt.Errorf("prune history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var ids []any
	for rows.Next() {
		var id any
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("prune history: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prune history: %w", err)
	}
	return ids, nil
}

func (s *Store) pruneTx(ctx context.Context, fn func(*sql.Tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.inTx(ctx, fn); err != nil {
		return fmt.Errorf("prune history: %w", err)
	}
	return nil
}

func inList(ids []any) (string, []any) {
	return "(" + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + ")", ids
}

func execCount(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
