package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DaemonStep is one line of the evacuation daemon's log about a host.
type DaemonStep struct {
	Time time.Time
	Msg  string
}

// DaemonSteps reads the log of the daemon running now and returns its
// lines about host from since on: where its time went.
func (e *Env) DaemonSteps(ctx context.Context, host string, since time.Time) ([]DaemonStep, error) {
	node, _, err := e.EvacuatorPID(ctx)
	if err != nil {
		return nil, err
	}
	out, errOut, code, err := e.Lab.Exec(ctx, node, "sh", "-c", "cat /run/resource-agents/computeha-evacuator-*.out")
	if err != nil || code != 0 {
		return nil, fmt.Errorf("the daemon's log on %s: exit %d, %v: %s", node, code, err, errOut)
	}
	var steps []DaemonStep
	for line := range strings.Lines(out) {
		kv := logfmt(line)
		if kv["host"] != host {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, kv["time"])
		if err != nil || t.Before(since) {
			continue
		}
		steps = append(steps, DaemonStep{Time: t, Msg: kv["msg"]})
	}
	return steps, nil
}

// logfmt splits a log/slog text line into its keys and values.
func logfmt(line string) map[string]string {
	out := map[string]string{}
	s := strings.TrimSpace(line)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		k := s[:eq]
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			// A quoted value: up to the next unescaped quote.
			i := 1
			for i < len(s) && (s[i] != '"' || s[i-1] == '\\') {
				i++
			}
			v = strings.ReplaceAll(s[1:min(i, len(s))], `\"`, `"`)
			s = s[min(i+1, len(s)):]
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			v, s = s[:sp], s[sp:]
		}
		out[k] = v
		s = strings.TrimLeft(s, " ")
	}
	return out
}
