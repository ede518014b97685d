package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/evacstate"
)

// Computeha runs `computeha ARGS...` on a controller, as an operator would, and returns its
// stdout, stderr and exit status.
func (e *Env) Computeha(ctx context.Context, args ...string) (string, string, int, error) {
	return e.Lab.Exec(ctx, e.observer, append([]string{"computeha"}, args...)...)
}

// RecoveryEntry is a line of `computeha recovery list --json`.
type RecoveryEntry struct {
	Host   string `json:"host"`
	Phase  string `json:"phase"`
	Since  string `json:"since"`
	By     string `json:"by"`
	Owner  string `json:"owner"`
	Reason string `json:"reason"`
}

// Recoveries runs `computeha recovery list --json` on a controller.
func (e *Env) Recoveries(ctx context.Context) ([]RecoveryEntry, error) {
	out, errOut, code, err := e.Computeha(ctx, "recovery", "list", "--json")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("computeha recovery list: exit %d: %s%s", code, out, errOut)
	}
	var list []RecoveryEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r RecoveryEntry
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("computeha recovery list: line %q: %w", sc.Text(), err)
		}
		list = append(list, r)
	}
	return list, sc.Err()
}

// WaitPhase waits until host's evacuation state is phase, set at or after since.
func (e *Env) WaitPhase(ctx context.Context, host string, phase evacstate.Phase, since time.Time, limit time.Duration) (evacstate.State, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := e.Mark(ctx, host)
		if err == nil && st.Phase == phase && !st.Since.Before(since.Add(-time.Second).Truncate(time.Second)) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%s not %s within %s: %+v (%v)", host, phase, limit, st, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Simulated is a host's line of `computeha simulate --json`.
type Simulated struct {
	Host  string `json:"host"`
	Guard string `json:"guard"`
	VMs   []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Method  string `json:"method"`
		Target  string `json:"target"`
	} `json:"vms"`
	// Excluded are the segment's hosts that would take nothing, and why (plan's reason code).
	Excluded []struct{ Host, Reason string } `json:"excluded"`
}

// Simulate runs `computeha simulate --json HOST...` on a controller.
func (e *Env) Simulate(ctx context.Context, hosts ...string) ([]Simulated, error) {
	out, errOut, code, err := e.Computeha(ctx, append([]string{"simulate", "--json", "--config", e.EvacdConfig()}, hosts...)...)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("computeha simulate: exit %d: %s%s", code, out, errOut)
	}
	var sims []Simulated
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var s Simulated
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("computeha simulate: %q: %w", sc.Text(), err)
		}
		sims = append(sims, s)
	}
	return sims, sc.Err()
}
