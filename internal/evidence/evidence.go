// Package evidence gathers, at one instant, the raw observations the health decision is made
// from: Pacemaker's membership (crm_mon), what every node publishes about its peers'
// reachability (the computeha-reach-NETWORK node attributes, private to attrd: they are never
// in the CIB, so they are read from attrd, one query per configured network) and the
// heartbeat records on the shared storage.
//
// The three sources fail differently, and Gather keeps them apart: the cluster must answer
// (without crm_mon and attrd there is no evidence at all, and Gather returns an error), a
// malformed reachability attribute is logged and left out (one node's bad value must not blind
// the others), and the shared storage may hang or fail without making Gather fail: that is
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
	// AttributeAllNodes is one attrd attribute of every node that has it, by node name: an
	// empty map, not an error, when no node has it.
	AttributeAllNodes(ctx context.Context, name string) (map[string]string, error)
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

// SlowCluster is how long crm_mon or an attrd query may take before Gather logs it: the
// decisions wait for the slowest of them.
const SlowCluster = 3 * time.Second

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
// not answer (crm_mon or an attrd query failed): then there are no observations. A shared
// directory that cannot be read is reported in Observations.StorageErr instead, and a host's
// record file that exists but cannot be used in Observations.RecordErrs.
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
		statusErr   error
		reach       = make([]map[string]string, len(cfg.Networks))
		reachErrs   = make([]error, len(cfg.Networks))
		heartbeats  Heartbeats
		storageErr  error
		storageTook time.Duration
	)
	var statusTook time.Duration
	reachTook := make([]time.Duration, len(cfg.Networks))
	wg.Go(func() {
		start := time.Now()
		status, statusErr = src.Cluster.Status(ctx)
		statusTook = time.Since(start)
	})
	// One attrd query per network, all at once: the slowest bounds the wait, not their sum.
	for i, n := range cfg.Networks {
		wg.Go(func() {
			start := time.Now()
			reach[i], reachErrs[i] = src.Cluster.AttributeAllNodes(ctx, health.ReachAttribute(n.Name))
			reachTook[i] = time.Since(start)
		})
	}
	wg.Go(func() {
		start := time.Now()
		if cfg.Unlisted() == "" {
			heartbeats, storageErr = storage.ReadJoined(ctx, cfg.SharedDir, cfg.HostNames(), StorageWait(cfg))
		} else {
			heartbeats, storageErr = storage.Read(ctx, cfg.SharedDir, cfg.HostNames(), StorageWait(cfg))
		}
		storageTook = time.Since(start)
	})
	wg.Wait()
	if slowest := slices.Max(append(reachTook, statusTook)); slowest > SlowCluster {
		log.Warn("the cluster answered slowly", "crm_mon", statusTook.Round(time.Millisecond),
			"attrd", slices.Max(append(reachTook, 0)).Round(time.Millisecond))
	}
	if err := errors.Join(append([]error{statusErr}, reachErrs...)...); err != nil {
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
		Reach:      Reach(reachValues(cfg, reach), log),
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

// reachValues pairs each configured network's name with its attribute values, by node.
func reachValues(cfg *config.Health, values []map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(cfg.Networks))
	for i, n := range cfg.Networks {
		out[n.Name] = values[i]
	}
	return out
}

// Reach decodes what each node publishes about its peers, from the values of each network's
// reachability attribute by node: values[network][node]. A value that does not parse is
// logged and skipped; so is an empty one, which attrd keeps for a deleted attribute.
func Reach(values map[string]map[string]string, log *slog.Logger) map[string]map[string]map[string]health.Signal {
	out := map[string]map[string]map[string]health.Signal{}
	for _, network := range slices.Sorted(maps.Keys(values)) {
		byNode := values[network]
		for _, node := range slices.Sorted(maps.Keys(byNode)) {
			value := byNode[node]
			if value == "" {
				continue
			}
			view, err := health.ParseReach(value)
			if err != nil {
				log.Warn("ignoring a malformed reachability attribute", "node", node,
					"attribute", health.ReachAttribute(network), "error", err)
				continue
			}
			if out[node] == nil {
				out[node] = map[string]map[string]health.Signal{}
			}
			out[node][network] = view
		}
	}
	return out
}
