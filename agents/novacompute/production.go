package novacompute

import (
	"context"
	"fmt"
	"os"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

// ProductionDeps are the dependencies of the agent the binary serves: the
// Nova API through internal/openstack, and the evacuation state from the
// node attribute computeha's fencing and evacuation daemon keep (see
// internal/evacstate), read with Pacemaker's tools.
func ProductionDeps() Deps {
	return Deps{
		Nova: func(ctx context.Context, p *Params, loginFile string) (Nova, error) {
			c, err := openstack.New(ctx, openstack.Options{
				Cloud: p.Cloud, CloudsFile: p.CloudsYAML, CallTimeout: p.NovaTimeout, LoginFile: loginFile,
			})
			if err != nil {
				return nil, err
			}
			return novaAdapter{c: c}, nil
		},
		Evacuation: func(context.Context, *Params) (EvacuationState, error) {
			return evacAdapter{c: crm.NewClient(nil), node: os.Getenv("OCF_RESKEY_CRM_meta_on_node")}, nil
		},
		Hostname: os.Hostname,
	}
}

// Agent is ocf:computeha:nova-compute as the binary serves it.
func Agent() *agents.Agent { return NewAgent(ProductionDeps()) }

// novaAdapter narrows openstack.Client to what the agent needs.
type novaAdapter struct{ c openstack.Client }

var _ Nova = novaAdapter{}

func service(s openstack.Service) Service {
	return Service{
		ID: s.ID, Host: s.Host, State: s.State, Status: s.Status, ForcedDown: s.ForcedDown,
		DisabledReason: s.DisabledReason, UpdatedAt: s.UpdatedAt,
	}
}

func (a novaAdapter) Service(ctx context.Context, host string) (Service, error) {
	s, err := a.c.FindComputeService(ctx, host)
	if openstack.IsNotFound(err) {
		return Service{}, fmt.Errorf("%w: %s", ErrNoService, host)
	}
	if err != nil {
		return Service{}, err
	}
	return service(s), nil
}

// ComputeServices lists the compute services through the hypervisors,
// which carry each service's host and state in one call.
func (a novaAdapter) ComputeServices(ctx context.Context) ([]Service, error) {
	hvs, err := a.c.HypervisorHosts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(hvs))
	for _, h := range hvs {
		out = append(out, Service{Host: h.ServiceHost, State: h.State, Status: h.Status})
	}
	return out, nil
}

func (a novaAdapter) Unforce(ctx context.Context, id string) error {
	_, err := a.c.UnforceDown(ctx, id)
	return err
}

func (a novaAdapter) Enable(ctx context.Context, id string) error {
	_, err := a.c.EnableService(ctx, id)
	return err
}

// evacAdapter reads the evacuation state of the Pacemaker node the agent
// runs on (the attribute lives on the node, whatever Nova calls the host).
type evacAdapter struct {
	c    *crm.Client
	node string
}

func (a evacAdapter) Pending(ctx context.Context, host string) (bool, string, error) {
	node := a.node
	if node == "" {
		node = host
	}
	st, err := evacstate.Marks{Attrs: a.c}.Get(ctx, node)
	if err != nil {
		return false, "", err
	}
	if st.Blocking() {
		return true, fmt.Sprintf("evacuation of %s is %s", node, st), nil
	}
	return false, "", nil
}
