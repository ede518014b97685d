package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/computeha/computeha/test/lab"
)

// FencerLogMark is where each controller's Pacemaker log ended at one moment: what the
// fencers log after it is read from there.
type FencerLogMark map[string]int64

// fencerLog is a controller's Pacemaker log in the lab.
func (e *Env) fencerLog(node string) string {
	return filepath.Join(e.Lab.Dir(), "nodes", node, "log", "pacemaker", "pacemaker.log")
}

// MarkFencerLogs notes where every controller's Pacemaker log ends now.
func (e *Env) MarkFencerLogs(ctx context.Context) (FencerLogMark, error) {
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	m := FencerLogMark{}
	for _, n := range nodes {
		if n.Kind != lab.Controller {
			continue
		}
		fi, err := os.Stat(e.fencerLog(n.Name))
		if err != nil {
			return nil, err
		}
		m[n.Name] = fi.Size()
	}
	return m, nil
}

// DeviceRuns are the runs of a fence device against host that the controllers' fencers
// logged since mark, one line each ("Operation 'off' [pid] targeting cmp3 using gate
// returned 0 ..."), whoever asked for them: Pacemaker merges a request into an identical one
// in flight, and then the devices run once for both.
func (e *Env) DeviceRuns(mark FencerLogMark, host, device string) ([]string, error) {
	if len(mark) == 0 {
		return nil, errors.New("no controller's log was marked")
	}
	run := regexp.MustCompile(`Operation '[a-z]+' \[\d+\] targeting ` + regexp.QuoteMeta(host) + ` using ` + regexp.QuoteMeta(device) + ` returned`)
	var runs []string
	for node, off := range mark {
		f, err := os.Open(e.fencerLog(node))
		if err != nil {
			return nil, err
		}
		_, err = f.Seek(off, io.SeekStart)
		var data []byte
		if err == nil {
			data, err = io.ReadAll(f)
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s's Pacemaker log: %w", node, err)
		}
		for line := range strings.Lines(string(data)) {
			if run.MatchString(line) {
				runs = append(runs, strings.TrimSpace(line))
			}
		}
	}
	return runs, nil
}
