package history

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Incident ties together everything recorded about one host failure: its
// id is the correlation id of every event and move recorded through it.
type Incident struct {
	ID     string
	Host   string
	Opened time.Time
	s      *Store
}

// IncidentInfo is an incident as stored.
type IncidentInfo struct {
	ID      string
	Host    string
	Opened  time.Time
	Closed  time.Time // zero while open
	Outcome Outcome   // empty while open
	Summary string    // the closing summary
	Actor   string
}

// newIncidentID is sortable and readable: the UTC opening time and 32
// random bits, e.g. "20260301T100000Z-9f86d081". Two daemons opening an
// incident in the same second still get distinct ids.
func newIncidentID(t time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("incident id: %w", err)
	}
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

// OpenIncident starts an incident for a failed host and records the failure
// event that opens it (kind failure, with failure's reason and details), in
// one transaction. failure.Host defaults to host.
func (s *Store) OpenIncident(ctx context.Context, host string, failure Event) (*Incident, error) {
	host = clean(strings.TrimSpace(host))
	if host == "" {
		return nil, fmt.Errorf("%w: an incident needs a host", ErrInvalid)
	}
	if err := checkLen("host", host, maxName); err != nil {
		return nil, err
	}
	failure.Kind = KindFailure
	if failure.Host == "" {
		failure.Host = host
	}
	failure.Time = s.stamp(failure.Time)
	id, err := newIncidentID(failure.Time)
	if err != nil {
		return nil, err
	}
	failure.Incident = id
	if err := s.prepareEvent(&failure); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, host, opened_us, closed_us, outcome, summary, actor)
			VALUES (?, ?, ?, NULL, '', '', ?)`, id, host, micro(failure.Time), failure.Actor); err != nil {
			return err
		}
		return insertEvent(ctx, tx, &failure)
	})
	if err != nil {
		return nil, fmt.Errorf("open incident for %s: %w", host, err)
	}
	s.recorded(failure)
	return &Incident{ID: id, Host: host, Opened: failure.Time, s: s}, nil
}

// ResumeIncident returns an open incident by id, for a daemon that takes
// over (or restarts) in the middle of a recovery. A closed incident gives
// ErrFinished, an unknown one ErrNotFound.
func (s *Store) ResumeIncident(ctx context.Context, id string) (*Incident, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		in     Incident
		opened int64
		closed sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, host, opened_us, closed_us FROM incidents WHERE id = ?`, id).
		Scan(&in.ID, &in.Host, &opened, &closed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("incident %s: %w", id, err)
	case closed.Valid:
		return nil, fmt.Errorf("incident %s: %w", id, ErrFinished)
	}
	in.Opened, in.s = fromMicro(opened), s
	return &in, nil
}

// ResumeOrOpenIncident resumes host's newest open incident, for a daemon that takes over (or
// restarts) in the middle of its recovery, or opens one with failure when it has none.
func (s *Store) ResumeOrOpenIncident(ctx context.Context, host string, failure Event) (*Incident, error) {
	if open, err := s.Incidents(ctx, Filter{Host: host}); err == nil {
		for i := len(open) - 1; i >= 0; i-- {
			if open[i].Outcome == "" {
				if in, err := s.ResumeIncident(ctx, open[i].ID); err == nil {
					return in, nil
				}
			}
		}
	}
	return s.OpenIncident(ctx, host, failure)
}

// Incidents lists incidents opened in f's time range, oldest first. Host,
// Since, Until, Incident and Limit apply; Kind is ignored.
func (s *Store) Incidents(ctx context.Context, f Filter) ([]IncidentInfo, error) {
	f.Kind = ""
	if err := f.validate(); err != nil {
		return nil, err
	}
	where, args := f.where("opened_us", "host")
	// Incidents have no "incident" column: their id is the correlation id.
	where = strings.Replace(where, "incident = ?", "id = ?", 1)
	order := " ORDER BY opened_us, id"
	if f.Limit > 0 {
		order = " ORDER BY opened_us DESC, id DESC LIMIT ?"
		args = append(args, f.Limit)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT id, host, opened_us, closed_us, outcome, summary, actor
		FROM incidents`+where+order, args...)
	if err != nil {
		return nil, fmt.Errorf("query incidents: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []IncidentInfo
	for rows.Next() {
		var (
			in      IncidentInfo
			opened  int64
			closed  sql.NullInt64
			outcome string
		)
		if err := rows.Scan(&in.ID, &in.Host, &opened, &closed, &outcome, &in.Summary, &in.Actor); err != nil {
			return nil, fmt.Errorf("query incidents: %w", err)
		}
		in.Opened, in.Outcome = fromMicro(opened), Outcome(outcome)
		if closed.Valid {
			in.Closed = fromMicro(closed.Int64)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query incidents: %w", err)
	}
	if f.Limit > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// Record appends a step of the incident: e's Incident is set to this one,
// and an empty Host defaults to the failed host.
func (in *Incident) Record(ctx context.Context, e Event) error {
	return in.s.Record(ctx, in.own(e))
}

// RecordAll appends steps of the incident in one transaction, as Record does
// each.
func (in *Incident) RecordAll(ctx context.Context, events []Event) error {
	own := make([]Event, len(events))
	for i, e := range events {
		own[i] = in.own(e)
	}
	return in.s.RecordAll(ctx, own)
}

func (in *Incident) own(e Event) Event {
	e.Incident = in.ID
	if e.Host == "" {
		e.Host = in.Host
	}
	return e
}

// StartMove records a VM move of this incident (From defaults to the failed
// host) and a move event saying it started, both in one transaction.
func (in *Incident) StartMove(ctx context.Context, m Move) (int64, error) {
	m.Incident = in.ID
	if m.From == "" {
		m.From = in.Host
	}
	if err := in.s.prepareMove(&m); err != nil {
		return 0, err
	}
	e := in.own(Event{
		Time:    m.Start,
		Host:    m.From,
		Kind:    KindMove,
		Summary: moveVerb(m.Method) + " VM " + vmLabel(m.VMName, m.VMID) + dest(m.To),
	})
	if err := in.s.prepareEvent(&e); err != nil {
		return 0, err
	}
	ctx, cancel := in.s.bound(ctx)
	defer cancel()
	var id int64
	err := in.s.inTx(ctx, func(tx *sql.Tx) (err error) {
		if id, err = insertMove(ctx, tx, m); err != nil {
			return err
		}
		return insertEvent(ctx, tx, &e)
	})
	if err != nil {
		return 0, err
	}
	in.s.recorded(e)
	return id, nil
}

// moveVerb says what a move of method does, for its start event.
func moveVerb(method string) string {
	switch method {
	case "", "evacuate":
		return "evacuating"
	case "live-migrate":
		return "live-migrating"
	case "cold-migrate":
		return "cold-migrating"
	case "restart":
		return "restarting"
	case "resume":
		return "resuming"
	case "recreate":
		return "recreating"
	}
	return method + ":"
}

// RetryMove counts one more attempt of a move of this incident, and records a new
// destination when to is not empty.
func (in *Incident) RetryMove(ctx context.Context, id int64, to string) error {
	return in.s.RetryMove(ctx, id, to)
}

// FinishMove records how a move of this incident ended, and a move event
// with the result, both in one transaction.
func (in *Incident) FinishMove(ctx context.Context, id int64, out MoveOutcome) error {
	if err := in.s.prepareOutcome(&out); err != nil {
		return err
	}
	ctx, cancel := in.s.bound(ctx)
	defer cancel()
	var (
		ms Move
		e  Event
	)
	err := in.s.inTx(ctx, func(tx *sql.Tx) (err error) {
		if err := finishMove(ctx, tx, id, out); err != nil {
			return err
		}
		ms, err = moveByID(ctx, tx, id)
		if err != nil {
			return err
		}
		summary := fmt.Sprintf("VM %s %s", vmLabel(ms.VMName, ms.VMID), out.Result)
		if ms.To != "" && out.Result == MoveSucceeded {
			summary = fmt.Sprintf("VM %s moved to %s", vmLabel(ms.VMName, ms.VMID), ms.To)
		}
		if d, ok := ms.Duration(); ok {
			summary += fmt.Sprintf(" in %s", d.Round(time.Millisecond))
		}
		e = in.own(Event{Time: out.End, Host: ms.From, Kind: KindMove, Summary: summary})
		if out.Error != "" {
			e.Reason = Reason{Code: "move-" + ReasonCode(out.Result), Text: out.Error}
		}
		if err := in.s.prepareEvent(&e); err != nil {
			return err
		}
		return insertEvent(ctx, tx, &e)
	})
	if err != nil {
		return err
	}
	in.s.recorded(e)
	in.s.moveFinished(ms)
	return nil
}

// Close ends the incident with an outcome, recording a failure event with
// summary and reason that closes it. Closing twice fails with ErrFinished.
func (in *Incident) Close(ctx context.Context, outcome Outcome, summary string, reason Reason) error {
	if !outcome.valid() {
		return fmt.Errorf("%w: unknown incident outcome %q", ErrInvalid, outcome)
	}
	e := Event{
		Host:     in.Host,
		Kind:     KindFailure,
		Summary:  fmt.Sprintf("incident closed (%s): %s", outcome, strings.TrimSpace(summary)),
		Reason:   reason,
		Incident: in.ID,
	}
	if strings.TrimSpace(summary) == "" {
		e.Summary = fmt.Sprintf("incident closed (%s)", outcome)
	}
	s := in.s
	if err := s.prepareEvent(&e); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE incidents SET closed_us = ?, outcome = ?, summary = ?
			WHERE id = ? AND closed_us IS NULL`, micro(e.Time), string(outcome), clean(strings.TrimSpace(summary)), in.ID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrFinished
		}
		return insertEvent(ctx, tx, &e)
	})
	if err != nil {
		return fmt.Errorf("close incident %s: %w", in.ID, err)
	}
	s.recorded(e)
	return nil
}

// moveByID reads one move.
func moveByID(ctx context.Context, x querier, id int64) (Move, error) {
	m, err := scanMove(x.QueryRowContext(ctx, `SELECT `+moveColumns+` FROM moves WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Move{}, fmt.Errorf("move %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Move{}, fmt.Errorf("move %d: %w", id, err)
	}
	return m, nil
}

// inTx runs fn in a transaction and commits it, on the writer goroutine (serial).
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.serial(ctx, func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

func vmLabel(name, id string) string {
	if name == "" {
		return id
	}
	return name + " (" + id + ")"
}

func dest(to string) string {
	if to == "" {
		return ""
	}
	return " to " + to
}
