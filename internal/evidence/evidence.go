// Package evidence gathers, at one instant, the raw observations the health decision is made
// from: Pacemaker's membership (crm_mon), what every node publishes about its peers'
// reachability (the computeha-reach-* transient attributes of the CIB's status section) and
// the heartbeat records on the shared storage.
//
// The three sources fail differently, and Gather keeps them apart: the cluster must answer
// (without it there is no evidence at all, and Gather returns an error), a malformed
// reachability attribute is logged and left out (one node's bad value must not blind the
// others), and the shared storage may hang or fail without making Gather fail: that is
// itself evidence, carried in Observations.StorageErr, and the storage is never waited on for
// longer than a bound, since a dead NFS or FUSE mount blocks its readers indefinitely.
package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
)

// Cluster is the part of Pacemaker the evidence comes from.
type Cluster interface {
	// Status is crm_mon's view: which nodes are online or connected.
	Status(ctx context.Context) (*crm.Status, error)
	// CIB holds every node's transient attributes in its status section.
	CIB(ctx context.Context) (*crm.CIB, error)
}

var _ Cluster = (*crm.Client)(nil)

// Sources are where Gather looks.
type Sources struct {
	Cluster Cluster
	// Storage reads the heartbeat records. Nil reads the real filesystem with a fresh
	// Storage; a long-running caller keeps one Storage, so that a read hung on a dead mount
	// is not joined by a new one every interval.
	Storage *Storage
	// Now stamps the observations; nil is time.Now.
	Now func() time.Time
	// Log receives what Gather leaves out and why; nil discards it.
	Log *slog.Logger
}

// MaxStorageWait bounds how long Gather waits for the shared storage, whatever the interval.
const MaxStorageWait = 2 * time.Second

// StorageWait is how long Gather waits for the shared storage under cfg: an interval (so a
// caller looping every interval never falls behind), at most MaxStorageWait.
func StorageWait(cfg *config.Health) time.Duration {
	if cfg.Interval <= 0 {
		return MaxStorageWait
	}
	return min(cfg.Interval, MaxStorageWait)
}

// Gather reads the cluster state and the shared storage, in parallel, and returns them as
// observations stamped after both were read. The error is non-nil only when the cluster did
// not answer (crm_mon or cibadmin failed): then there are no observations. A shared directory
// that cannot be read is reported in Observations.StorageErr instead, and a host's record
// file that exists but cannot be used in Observations.RecordErrs.
func Gather(ctx context.Context, src Sources, cfg *config.Health) (health.Observations, error) {
	now := src.Now
	if now == nil {
		now = time.Now
	}
	log := src.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	storage := src.Storage
	if storage == nil {
		storage = &Storage{}
	}

	var (
		wg          sync.WaitGroup
		status      *crm.Status
		cib         *crm.CIB
		statusErr   error
		cibErr      error
		heartbeats  Heartbeats
		storageErr  error
		storageTook time.Duration
	)
	wg.Go(func() { status, statusErr = src.Cluster.Status(ctx) })
	wg.Go(func() { cib, cibErr = src.Cluster.CIB(ctx) })
	wg.Go(func() {
		start := time.Now()
		heartbeats, storageErr = storage.Read(ctx, cfg.SharedDir, cfg.HostNames(), StorageWait(cfg))
		storageTook = time.Since(start)
	})
	wg.Wait()
	if err := errors.Join(statusErr, cibErr); err != nil {
		return health.Observations{}, fmt.Errorf("cluster state: %w", err)
	}
	if storageErr != nil {
		log.Warn("storage heartbeats unreadable: every storage signal is unknown",
			"dir", cfg.SharedDir, "error", storageErr, "after", storageTook.Round(time.Millisecond))
	}
	for _, h := range slices.Sorted(maps.Keys(heartbeats.Errs)) {
		log.Warn("heartbeat record unreadable: the host's storage signal is unknown", "host", h, "error", heartbeats.Errs[h])
	}
	return health.Observations{
		Now:        now(),
		Members:    Members(status),
		Reach:      Reach(cib, cfg, log),
		Records:    heartbeats.Records,
		RecordErrs: heartbeats.Errs,
		StorageErr: storageErr,
	}, nil
}

// Members maps every node crm_mon lists to whether its heartbeat is up: a cluster node online,
// a remote node connected. It is membership only: a node Pacemaker wants fenced while it is
// still online (a failed stop: "UNCLEAN (online)") counts as up.
func Members(st *crm.Status) map[string]bool {
	m := make(map[string]bool, len(st.Nodes))
	for _, n := range st.Nodes {
		if n.Type == crm.NodePing {
			continue
		}
		m[n.Name] = n.Online
	}
	return m
}

// Reach decodes what each node publishes about its peers on each configured network. An
// attribute for a network the configuration does not name is skipped (a node with an older
// or newer configuration); a value that does not parse is logged and skipped.
func Reach(cib *crm.CIB, cfg *config.Health, log *slog.Logger) map[string]map[string]map[string]health.Signal {
	known := make(map[string]bool, len(cfg.Networks))
	for _, n := range cfg.Networks {
		known[n.Name] = true
	}
	out := map[string]map[string]map[string]health.Signal{}
	for _, ns := range cib.NodeStates {
		for name, value := range ns.Transient {
			network, ok := strings.CutPrefix(name, health.ReachAttributePrefix)
			if !ok {
				continue
			}
			if !known[network] {
				log.Debug("ignoring reachability of a network not in the configuration", "node", ns.Name, "attribute", name)
				continue
			}
			view, err := health.ParseReach(value)
			if err != nil {
				log.Warn("ignoring a malformed reachability attribute", "node", ns.Name, "attribute", name, "error", err)
				continue
			}
			if out[ns.Name] == nil {
				out[ns.Name] = map[string]map[string]health.Signal{}
			}
			out[ns.Name][network] = view
		}
	}
	return out
}
