package evacd

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
)

// brokenTargets fails every rebuild sent to one of broken by name, as a hypervisor that
// still holds the VM or cannot start it does: Nova puts the server in ERROR where it was.
// It does so by sending the request to disabled, a host Nova's scheduler refuses.
type brokenTargets struct {
	*openstack.Fake
	broken   []string
	disabled string

	mu    sync.Mutex
	asked []string // the targets asked for, in order ("" when the scheduler chose)
}

func (b *brokenTargets) Evacuate(ctx context.Context, id, target string) error {
	b.mu.Lock()
	b.asked = append(b.asked, target)
	b.mu.Unlock()
	if slices.Contains(b.broken, target) {
		target = b.disabled
	}
	return b.Fake.Evacuate(ctx, id, target)
}

func (b *brokenTargets) targets() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.asked)
}

func TestARetriedEvacuationGoesToAnotherSegmentHostThanTheOneItFailedOn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broken []string
		want   []string // targets of the requests, in order
		retry  []string // targets of the retry-elsewhere decisions, in order
	}{
		{
			name:   "the plan's next best host takes the retry",
			broken: []string{"cmp2"},
			want:   []string{"cmp2", "cmp3"},
			retry:  []string{"cmp3"},
		},
		{
			name:   "with every segment host failed the scheduler chooses",
			broken: []string{"cmp2", "cmp3"},
			want:   []string{"cmp2", "cmp3", ""},
			retry:  []string{"cmp3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				w := newWorld(t, "auto", "")
				w.boot("cmp1", 1, true)
				w.roomy("cmp2") // the plan's first choice
				w.disable(t, "cmp4")
				w.fail("cmp1")
				nova := &brokenTargets{Fake: w.nova, broken: tc.broken, disabled: "cmp4"}
				w.runWith(t, nova, 4*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
				if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
					t.Fatalf("cmp1 is %q, want done", p)
				}
				if diff := cmp.Diff(tc.want, nova.targets()); diff != "" {
					t.Errorf("evacuation targets (-want +got):\n%s", diff)
				}
				for id := range w.servers {
					s := w.hostOf(t, id)
					if s.Status != "ACTIVE" || s.Host == "cmp1" || s.Host == "cmp4" {
						t.Errorf("server is %s on %s, want ACTIVE on cmp2 or cmp3", s.Status, s.Host)
					}
				}
				var retry []string
				for _, e := range w.events(t, history.KindDecision) {
					if e.Reason.Code == "retry-elsewhere" {
						_, to, _ := strings.Cut(e.Summary, " retried on ")
						to, _, _ = strings.Cut(to, ",")
						retry = append(retry, to)
					}
				}
				if diff := cmp.Diff(tc.retry, retry); diff != "" {
					t.Errorf("retry-elsewhere decisions (-want +got):\n%s", diff)
				}
			})
		})
	}
}
