// Package nova is fence_nova: Nova-level (fabric) fencing of a compute
// host, used in a fencing topology level together with a power fence.
//
// off forces the host's nova-compute service down (so Nova accepts
// evacuations at once, with no service_down_time wait), disables it with a
// reason naming computeha and the time (so nothing new lands there), and
// durably marks the host for evacuation (the evacstate node attribute),
// then returns: it never sleeps. on (unfencing, automatic) succeeds only
// when no evacuation of the host is pending, running or failed; then it
// unforces and re-enables the service and clears the mark.
package nova

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

// Params are fence_nova's options. Where they overlap, they are
// fence_compute's (auth_url, project/tenant, domains, region, endpoint
// type, insecure, domain); cloud= with a clouds.yaml is preferred, since
// it keeps the password out of the CIB.
type Params struct {
	Plug          string `fence:"plug" old:"port" short:"n" metavar:"host" required:"true" help:"Compute host to fence: its nova-compute service host name (or short name, with domain)"`
	Cloud         string `fence:"cloud" metavar:"name" help:"clouds.yaml entry to authenticate with (preferred: no password in the CIB)"`
	CloudsYAML    string `fence:"clouds_yaml" metavar:"path" help:"clouds.yaml to read (default: OS_CLIENT_CONFIG_FILE, then the standard locations)"`
	AuthURL       string `fence:"auth_url" short:"k" metavar:"url" help:"Keystone URL, when not using cloud"`
	ProjectName   string `fence:"project_name" old:"tenant_name" short:"t" metavar:"project" help:"Keystone project, when not using cloud"`
	UserDomain    string `fence:"user_domain" short:"u" metavar:"domain" default:"Default" help:"Keystone user domain, when not using cloud"`
	ProjectDomain string `fence:"project_domain" short:"P" metavar:"domain" default:"Default" help:"Keystone project domain, when not using cloud"`
	Region        string `fence:"region_name" metavar:"region" help:"Region (overrides the cloud's)"`
	EndpointType  string `fence:"endpoint_type" short:"e" metavar:"type" choices:"public,internal,admin,publicURL,internalURL,adminURL" help:"Endpoint interface (overrides the cloud's; fence_compute's default is internalURL)"`
	Insecure      bool   `fence:"insecure" help:"Do not verify the API's TLS certificate"`
	Domain        string `fence:"domain" old:"compute_domain" short:"d" metavar:"domain" help:"DNS domain appended to short node names to form Nova host names (when Nova has no such host, the name as given is used)"`

	// fence_compute's options, accepted so that a device configured for it
	// works with only the agent's name changed (see Validate).
	RecordOnly        string `fence:"record_only" short:"r" metavar:"mode" help:"fence_compute compatibility: fence_nova always only records the host for evacuation (computeha's daemon evacuates), so 1 and 0 mean the same; 2 or disabled (report success, do nothing) is refused"`
	NoSharedStorage   bool   `fence:"no_shared_storage" help:"fence_compute compatibility, no effect: Nova (API 2.14 and later) tells shared from local instance storage itself when computeha evacuates"`
	InstanceFiltering bool   `fence:"instance_filtering" default:"1" help:"fence_compute compatibility: which VMs are recovered is computeha's policy (it honours evacuable on flavors and images); 0 (every VM whatever its tags) is refused"`
	fence.Credentials
	fence.Common
}

// CredentialsOptional is true with cloud=: the clouds.yaml carries the credentials.
func (p *Params) CredentialsOptional() bool { return p.Cloud != "" }

// Validate checks that one way of authenticating is given, and only one.
func (p *Params) Validate() error {
	switch {
	case p.Cloud != "" && p.AuthURL != "":
		return errors.New("give either cloud (with a clouds.yaml) or auth_url, not both")
	case p.Cloud == "" && p.AuthURL == "":
		return errors.New("give cloud (a clouds.yaml entry) or auth_url with username, password and project_name")
	case p.AuthURL != "" && (p.Username == "" || p.ProjectName == ""):
		return errors.New("auth_url needs username and project_name")
	case p.Cloud != "" && p.Password != "":
		return errors.New("password is not used with cloud: the clouds.yaml holds the credentials")
	}
	if p.RecordOnly != "" {
		if _, ok := fence.ParseBool(p.RecordOnly); !ok {
			if strings.EqualFold(p.RecordOnly, "2") || strings.EqualFold(p.RecordOnly, "disabled") {
				return fmt.Errorf("record_only=%s is refused: it makes fence_compute report success without fencing, "+
					"and fence_nova never reports a fencing it did not do; take the device out of the fencing level instead", p.RecordOnly)
			}
			return fmt.Errorf("record_only=%q is not valid: use 1 or 0 (fence_nova always only records the host for evacuation)", p.RecordOnly)
		}
	}
	if !p.InstanceFiltering {
		return errors.New("instance_filtering=0 (evacuate every VM whatever its evacuable tags) is refused: " +
			"which VMs computeha recovers is decided by its policy (the policy section of evacd.yaml), not by the fence device")
	}
	return nil
}

// host is the Nova host name for a plug.
func (p *Params) host(plug string) string {
	if p.Domain != "" && !strings.Contains(plug, ".") {
		return plug + "." + strings.TrimPrefix(p.Domain, ".")
	}
	return plug
}

// Marks reads and writes hosts' evacuation state ([evacstate.Marks] does, in Pacemaker).
type Marks interface {
	Get(ctx context.Context, node string) (evacstate.State, error)
	Set(ctx context.Context, node string, s evacstate.State) error
}

// Deps are what the agent talks to; tests replace them.
type Deps struct {
	Nova  func(ctx context.Context, p *Params, log *slog.Logger) (openstack.Client, error)
	Marks Marks
	Now   func() time.Time
}

// NewAgent returns fence_nova talking to deps.
func NewAgent(deps Deps) *fence.Agent {
	return &fence.Agent{
		Name:      "fence_nova",
		ShortDesc: "Fence agent for Nova compute hosts (computeha)",
		LongDesc: "fence_nova fences a compute host at the Nova level: off forces the host's nova-compute " +
			"service down and disables it, then marks the host for evacuation by computeha's evacuation " +
			"daemon; on (unfencing) is refused until that evacuation is done, then re-enables the service. " +
			"Use it in a fencing topology level after a power fence (fence_ipmi), so the host is powered " +
			"off before its VMs are restarted elsewhere.",
		VendorURL: "https://docs.openstack.org/nova/latest/",
		Fabric:    true,
		NewParams: func() fence.Params { return &Params{} },
		// Keystone and Nova under load take seconds per request, where a BMC
		// answers in milliseconds: with the common 5 s login and 3 s per
		// request, the device's start and monitor failed on a busy cloud and
		// Pacemaker banned it from the controller. A login and one slow
		// request still fit in the 20 s Pacemaker gives a device's action by
		// default.
		Defaults: map[string]string{"login_timeout": "10", "shell_timeout": "10"},
		Connect: func(ctx context.Context, fp fence.Params, log *slog.Logger) (fence.Device, error) {
			p := fp.(*Params)
			n, err := deps.Nova(ctx, p, log)
			if err != nil {
				return nil, err
			}
			now := deps.Now
			if now == nil {
				now = time.Now
			}
			return &device{nova: n, marks: deps.Marks, p: p, log: log, now: now}, nil
		},
	}
}

// Agent is fence_nova with the real Nova and Pacemaker.
var Agent = NewAgent(Deps{Nova: connectNova, Marks: evacstate.Marks{Attrs: crm.NewClient(nil)}})

// connectNova logs in to Keystone. Explicit credentials are passed to the
// OpenStack layer as an in-memory clouds.yaml (a memfd): never on disk,
// never in an argv.
func connectNova(ctx context.Context, p *Params, log *slog.Logger) (openstack.Client, error) {
	opts := openstack.Options{Cloud: p.Cloud, CloudsFile: p.CloudsYAML, Region: p.Region, Logger: log}
	if p.EndpointType != "" {
		opts.EndpointType = strings.TrimSuffix(p.EndpointType, "URL")
	}
	if p.Insecure {
		insecure := true
		opts.Insecure = &insecure
	}
	if p.AuthURL != "" {
		f, err := inMemoryClouds(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		opts.Cloud = "fence_nova"
		opts.CloudsFile = fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	}
	return openstack.New(ctx, opts)
}

func inMemoryClouds(p *Params) (*os.File, error) {
	doc := map[string]any{"clouds": map[string]any{"fence_nova": map[string]any{
		"auth": map[string]string{
			"auth_url": p.AuthURL, "username": p.Username, "password": p.Password,
			"project_name": p.ProjectName, "user_domain_name": p.UserDomain, "project_domain_name": p.ProjectDomain,
		},
		"identity_api_version": 3,
	}}}
	// JSON is YAML: no YAML library needed for a generated document.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("fence_nova-clouds", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("in-memory clouds.yaml: %w", err)
	}
	f := os.NewFile(uintptr(fd), "clouds.yaml")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("in-memory clouds.yaml: %w", err)
	}
	return f, nil
}

type device struct {
	nova  openstack.Client
	marks Marks
	p     *Params
	log   *slog.Logger
	now   func() time.Time
}

var (
	_ fence.Device = (*device)(nil)
	_ fence.Lister = (*device)(nil)
)

// node is the Pacemaker node whose attribute carries the mark: the one the
// fencer named, or else the plug.
func (d *device) node(plug string) string {
	if d.p.Nodename != "" {
		return d.p.Nodename
	}
	return plug
}

// service finds the nova-compute service of plug: under the name the domain gives it, or else,
// as fence_compute does when the configured domain is not the one Nova's host names use, under
// the plug's own name, then its short name.
func (d *device) service(ctx context.Context, plug string) (openstack.Service, error) {
	names := []string{d.p.host(plug), plug}
	if short, _, ok := strings.Cut(plug, "."); ok {
		names = append(names, short)
	}
	names = slices.Compact(names)
	var first error
	for i, name := range names {
		svc, err := d.nova.FindComputeService(ctx, name)
		if err == nil {
			if i > 0 {
				d.log.Warn("Nova has no compute host by the name the domain gives; using the one it has", "tried", names[0], "host", svc.Host)
			}
			return svc, nil
		}
		if !openstack.IsNotFound(err) {
			return openstack.Service{}, err
		}
		if first == nil {
			first = err
		}
	}
	return openstack.Service{}, first
}

// Status is OFF when both halves of fencing are in place: the service is forced
// down, and the host is marked for a recovery not over (pending, running or
// failed), or for one done while the service is still disabled (for its fencing,
// its health, its maintenance or by an operator: the unfencing is still to come).
// A recovery done before the host came back is history: a host back in service,
// then forced down by anything but a fencing (an operator, say) is ON, and its
// fencing marks it again, so that it is recovered.
func (d *device) Status(ctx context.Context, plug string) (fence.State, error) {
	svc, err := d.service(ctx, plug)
	if err != nil {
		return fence.Unknown, err
	}
	st, err := d.marks.Get(ctx, d.node(plug))
	if err != nil {
		return fence.Unknown, fmt.Errorf("evacuation state of %s: %w", d.node(plug), err)
	}
	d.log.Debug("nova state", "host", svc.Host, "forced_down", svc.ForcedDown, "status", svc.Status, "evacuation", st.String())
	if svc.ForcedDown && (st.Blocking() || st.Phase == evacstate.Done && !svc.Enabled()) {
		return fence.Off, nil
	}
	return fence.On, nil
}

func (d *device) SetPower(ctx context.Context, plug string, on bool) error {
	if on {
		return d.unfence(ctx, plug)
	}
	return d.fence(ctx, plug)
}

func (d *device) fence(ctx context.Context, plug string) error {
	svc, err := d.service(ctx, plug)
	if err != nil {
		return err
	}
	host := svc.Host
	// Force down before disabling: disabling a dead host Nova still
	// believes up waits about a minute on an RPC to it.
	if !svc.ForcedDown {
		if svc, err = d.nova.ForceDown(ctx, svc.ID); err != nil {
			return fmt.Errorf("force down %s: %w", host, err)
		}
	}
	if svc.Enabled() {
		reason := fmt.Sprintf("%s fenced by fence_nova at %s", evacstate.DisabledReasonPrefix, d.now().UTC().Format(time.RFC3339))
		if _, err := d.nova.DisableService(ctx, svc.ID, reason); err != nil {
			return fmt.Errorf("disable %s: %w", host, err)
		}
	}
	node := d.node(plug)
	st, err := d.marks.Get(ctx, node)
	if err != nil {
		return fmt.Errorf("evacuation state of %s: %w", node, err)
	}
	// A host already pending, running or failed keeps its state: a second
	// fencing must not restart or hide a recovery in progress.
	if st.Phase == evacstate.None || st.Phase == evacstate.Done {
		mark := evacstate.State{Phase: evacstate.Pending, By: "fence_nova", Since: d.now().UTC()}
		if err := d.marks.Set(ctx, node, mark); err != nil {
			return fmt.Errorf("mark %s for evacuation: %w", node, err)
		}
		d.log.Info("host marked for evacuation", "node", node, "host", host)
	}
	return nil
}

func (d *device) unfence(ctx context.Context, plug string) error {
	node := d.node(plug)
	st, err := d.marks.Get(ctx, node)
	if err != nil {
		return fmt.Errorf("evacuation state of %s: %w", node, err)
	}
	if st.Blocking() {
		return fmt.Errorf("evacuation of %s is %s (since %s%s): it stays fenced until that is done",
			node, st.Phase, st.Since.Format(time.RFC3339), reasonSuffix(st.Reason))
	}
	svc, err := d.service(ctx, plug)
	if err != nil {
		return err
	}
	host := svc.Host
	if svc.ForcedDown {
		unforced, err := d.nova.UnforceDown(ctx, svc.ID)
		switch {
		case err == nil:
			svc = unforced
		case !openstack.IsEvacuationsPending(err):
			return fmt.Errorf("unforce %s: %w", host, err)
		default:
			// Nova keeps the service forced down until the host's
			// nova-compute restarts and deletes the evacuated copies; the
			// nova-compute agent unforces it then.
			d.log.Info("Nova keeps the service forced down until nova-compute has cleaned up", "host", host)
		}
	}
	// Only a disable of ours is undone: one an operator made stays.
	if !svc.Enabled() && evacstate.DisabledByUs(svc.DisabledReason) {
		if _, err := d.nova.EnableService(ctx, svc.ID); err != nil {
			return fmt.Errorf("enable %s: %w", host, err)
		}
	}
	if st.Phase != evacstate.None {
		if err := d.marks.Set(ctx, node, evacstate.State{}); err != nil {
			return fmt.Errorf("clear the evacuation state of %s: %w", node, err)
		}
	}
	return nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ", " + r
}

// List names every compute host, with Nova's view of it: OFF when its
// service is forced down.
func (d *device) List(ctx context.Context) ([]fence.Outlet, error) {
	hvs, err := d.nova.HypervisorHosts(ctx)
	if err != nil {
		return nil, err
	}
	var out []fence.Outlet
	seen := map[string]bool{}
	for _, h := range hvs {
		if h.ServiceHost == "" || seen[h.ServiceHost] {
			continue
		}
		seen[h.ServiceHost] = true
		o := fence.Outlet{ID: h.ServiceHost, Alias: h.Hostname, State: fence.On}
		if h.State == "down" {
			o.State = fence.Off
		}
		out = append(out, o)
	}
	return out, nil
}

func (d *device) Close() error { return nil }
