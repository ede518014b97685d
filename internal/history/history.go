package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors callers classify with errors.Is.
var (
	// ErrInvalid marks bad input: an unknown kind or driver, a missing
	// field, a value too long for the schema, malformed details.
	ErrInvalid = errors.New("invalid history input")
	// ErrNotFound means the move or incident does not exist.
	ErrNotFound = errors.New("not found in history")
	// ErrFinished means a move or incident was already finished or closed;
	// its end is recorded once and never rewritten.
	ErrFinished = errors.New("already finished")
	// ErrSchemaTooNew means the database was written by a newer computeha.
	ErrSchemaTooNew = errors.New("history schema is newer than this computeha supports")
)

// Kind classifies an event.
type Kind string

// The kinds of events. Every event has exactly one.
const (
	KindFailure     Kind = "failure"     // a host was seen failing; opens and closes incidents
	KindFencing     Kind = "fencing"     // a fencing request and its result
	KindDecision    Kind = "decision"    // a verdict of the decision engine, with its reason
	KindMove        Kind = "move"        // a VM evacuation started or finished
	KindAlert       Kind = "alert"       // something an operator must look at
	KindGuard       Kind = "guard"       // a safety guard held recovery back (quorum, mass failure)
	KindMaintenance Kind = "maintenance" // a host entered or left maintenance
	KindConfig      Kind = "config"      // the daemon's configuration changed
)

// Kinds lists every kind, in the order help texts show them.
func Kinds() []Kind {
	return []Kind{KindFailure, KindFencing, KindDecision, KindMove, KindAlert, KindGuard, KindMaintenance, KindConfig}
}

// ParseKind turns a command-line value into a Kind, or an ErrInvalid error
// naming the accepted values.
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if k.Valid() {
		return k, nil
	}
	names := make([]string, 0, len(Kinds()))
	for _, v := range Kinds() {
		names = append(names, string(v))
	}
	return "", fmt.Errorf("%w: unknown kind %q (want one of %s)", ErrInvalid, s, strings.Join(names, ", "))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds() {
		if k == v {
			return true
		}
	}
	return false
}

// ReasonCode is the machine-readable half of a reason, for example
// "host-unreachable" or "quorum-lost". The decision engine owns the codes;
// the history stores them verbatim so that they can be counted and filtered.
type ReasonCode string

// Reason says why something happened: a typed code and a sentence for people.
type Reason struct {
	Code ReasonCode
	Text string
}

// String renders "code: text", or whichever half is set.
func (r Reason) String() string {
	switch {
	case r.Code != "" && r.Text != "":
		return string(r.Code) + ": " + r.Text
	case r.Code != "":
		return string(r.Code)
	default:
		return r.Text
	}
}

// Event is one append-only history record.
type Event struct {
	ID       int64     // assigned by the store
	Time     time.Time // UTC, microsecond precision; zero means "now" when recorded
	Host     string    // the compute host concerned; empty for cluster-wide events
	Kind     Kind
	Summary  string // one line for people
	Reason   Reason
	Actor    string // daemon instance that recorded it; defaults to the store's actor
	Incident string // correlation id of the host failure it belongs to, if any
	// Details is a JSON value with whatever else is worth keeping (VM counts,
	// fence device, durations). Stored compacted; nil when absent.
	Details json.RawMessage
}

// DetailsOf is v as an event's Details: nil when v is nil or JSON cannot encode it (the event
// is kept without them).
func DetailsOf(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// MoveResult is the state of a VM move.
type MoveResult string

// Move results. A move is running until it finishes with one of the others.
const (
	MoveRunning   MoveResult = "running"
	MoveSucceeded MoveResult = "succeeded"
	MoveFailed    MoveResult = "failed"
	MoveSkipped   MoveResult = "skipped" // deliberately not moved (pinned, not evacuable, ...)
)

func (r MoveResult) terminal() bool {
	return r == MoveSucceeded || r == MoveFailed || r == MoveSkipped
}

// Move is one VM's recovery from a failed host: an evacuation, a migration, a restart or a
// recreation (Method).
type Move struct {
	ID       int64 // assigned by the store
	Incident string
	VMID     string // Nova server UUID
	VMName   string
	Project  string
	From     string // failed host
	To       string // destination; may stay empty until the scheduler picks one
	Start    time.Time
	End      time.Time // zero while running
	Result   MoveResult
	Attempts int
	Error    string // last error text when the move failed
	Actor    string
	// Method is how the VM was moved or restarted: evacuate, live-migrate, cold-migrate,
	// restart, recreate, none. Empty in moves recorded before methods were (read as evacuate).
	Method string
}

// Duration is End-Start, and false while the move is still running.
func (m Move) Duration() (time.Duration, bool) {
	if m.End.IsZero() {
		return 0, false
	}
	return m.End.Sub(m.Start), true
}

// MoveOutcome is how a move ended, given to FinishMove.
type MoveOutcome struct {
	Result MoveResult // succeeded, failed or skipped
	To     string     // final destination; empty keeps what is recorded
	Error  string
	End    time.Time // zero means "now"
}

// Outcome is how an incident ended.
type Outcome string

// Incident outcomes.
const (
	OutcomeRecovered Outcome = "recovered" // every VM was moved (or deliberately skipped)
	OutcomePartial   Outcome = "partial"   // some VMs could not be moved
	OutcomeFailed    Outcome = "failed"    // recovery did not happen (fencing failed, ...)
	OutcomeAborted   Outcome = "aborted"   // recovery was called off (host came back, guard, operator)
)

func (o Outcome) valid() bool {
	switch o {
	case OutcomeRecovered, OutcomePartial, OutcomeFailed, OutcomeAborted:
		return true
	}
	return false
}

// Filter selects records. Zero fields select everything.
type Filter struct {
	Host     string    // events of this host; moves from or to it; incidents of it
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	Kind     Kind      // events of this kind; Moves returns nothing unless empty or KindMove
	Incident string
	// Limit keeps only the most recent Limit records (still returned oldest
	// first); 0 means no limit.
	Limit int
}

func (f Filter) validate() error {
	if f.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalid, f.Limit)
	}
	if f.Kind != "" && !f.Kind.Valid() {
		_, err := ParseKind(string(f.Kind))
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return fmt.Errorf("%w: until (%s) is before since (%s)", ErrInvalid,
			f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	return nil
}

// Column sizes of the schema, checked before writing so that both backends
// accept and refuse the same input (SQLite would store anything).
const (
	maxName     = 255 // host, actor, VM name, project, VM id
	maxCode     = 64  // kind, reason code, result, outcome
	maxIncident = 64
)

// checkLen returns an ErrInvalid error when s has more than max characters.
func checkLen(field, s string, max int) error {
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: %s is %d characters long (at most %d)", ErrInvalid, field, n, max)
	}
	return nil
}

// clean makes text storable in a utf8mb4 column: invalid UTF-8 would be
// refused by MySQL in strict mode, and losing an event over one bad byte in
// an error message is worse than a replacement character.
func clean(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// micro converts to the stored representation: microseconds since the epoch.
func micro(t time.Time) int64 { return t.UnixMicro() }

// fromMicro converts back, always in UTC.
func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }
