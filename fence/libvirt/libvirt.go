// Package libvirt is fence_libvirt: power fencing of libvirt domains, for
// clusters whose hosts are virtual machines and for tests. It speaks the
// libvirt RPC protocol itself (no virsh process), locally over the UNIX
// socket or remotely over TCP, TLS or SSH as the connection URI says.
package libvirt

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/within"
)

// Params are fence_libvirt's options.
type Params struct {
	URI  string `fence:"uri" metavar:"uri" default:"qemu:///system" help:"libvirt connection URI (qemu:///system, qemu+tcp://host/system, qemu+tls://host/system, test+unix:///default?socket=PATH, ...)"`
	Plug string `fence:"plug" old:"port" short:"n" metavar:"domain" required:"true" help:"Name or UUID of the domain to fence"`
	fence.Common
}

// Validate checks the URI parses and names a transport we speak.
func (p *Params) Validate() error {
	u, err := url.Parse(p.URI)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("uri %q is not a libvirt connection URI", p.URI)
	}
	if _, pw := u.User.Password(); pw {
		return fmt.Errorf("uri must not carry a password; use an SSH key (keyfile=) or TLS certificates")
	}
	return nil
}

// Agent is fence_libvirt.
var Agent = &fence.Agent{
	Name:      "fence_libvirt",
	ShortDesc: "Fence agent for libvirt domains (computeha)",
	LongDesc: "fence_libvirt powers a libvirt domain off (destroy) and on (start) through the libvirt " +
		"RPC protocol, and confirms every change by reading the domain state back within power_timeout. " +
		"The plug is the domain's name or UUID; list shows every domain as name,uuid.",
	VendorURL: "https://libvirt.org",
	NewParams: func() fence.Params { return &Params{} },
	Connect:   connect,
}

func connect(ctx context.Context, fp fence.Params, log *slog.Logger) (fence.Device, error) {
	p := fp.(*Params)
	u, err := url.Parse(p.URI)
	if err != nil {
		return nil, err
	}
	log.Debug("connecting to libvirt", "uri", u.Redacted())
	lv, err := within.Within(ctx, func() (*golibvirt.Libvirt, error) { return golibvirt.ConnectToURI(u) })
	if err != nil {
		return nil, err
	}
	return &device{lv: lv}, nil
}

type device struct{ lv *golibvirt.Libvirt }

var (
	_ fence.Device = (*device)(nil)
	_ fence.Lister = (*device)(nil)
)

// parseUUID reads the canonical 8-4-4-4-12 form.
func parseUUID(s string) (golibvirt.UUID, bool) {
	var u golibvirt.UUID
	h := strings.ReplaceAll(s, "-", "")
	if len(s) != 36 || len(h) != 32 {
		return u, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return u, false
	}
	copy(u[:], b)
	return u, true
}

func formatUUID(u golibvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (d *device) lookup(ctx context.Context, plug string) (golibvirt.Domain, error) {
	dom, err := within.Within(ctx, func() (golibvirt.Domain, error) {
		if u, ok := parseUUID(plug); ok {
			dom, err := d.lv.DomainLookupByUUID(u)
			if err == nil || !golibvirt.IsNotFound(err) {
				return dom, err
			}
		}
		return d.lv.DomainLookupByName(plug)
	})
	if golibvirt.IsNotFound(err) {
		return dom, fmt.Errorf("%w: %s", fence.ErrNoPlug, plug)
	}
	return dom, err
}

func stateOf(s golibvirt.DomainState) fence.State {
	switch s {
	case golibvirt.DomainShutoff, golibvirt.DomainCrashed:
		return fence.Off
	case golibvirt.DomainRunning, golibvirt.DomainBlocked, golibvirt.DomainPaused,
		golibvirt.DomainShutdown, golibvirt.DomainPmsuspended:
		// A paused, suspended or shutting-down guest can still run again
		// without us: for fencing it is on.
		return fence.On
	}
	return fence.Unknown
}

func (d *device) Status(ctx context.Context, plug string) (fence.State, error) {
	dom, err := d.lookup(ctx, plug)
	if err != nil {
		return fence.Unknown, err
	}
	st, err := within.Within(ctx, func() (int32, error) {
		st, _, err := d.lv.DomainGetState(dom, 0)
		return st, err
	})
	if err != nil {
		return fence.Unknown, err
	}
	return stateOf(golibvirt.DomainState(st)), nil
}

func (d *device) SetPower(ctx context.Context, plug string, on bool) error {
	dom, err := d.lookup(ctx, plug)
	if err != nil {
		return err
	}
	_, err = within.Within(ctx, func() (struct{}, error) {
		if on {
			return struct{}{}, d.lv.DomainCreate(dom)
		}
		return struct{}{}, d.lv.DomainDestroy(dom)
	})
	return err
}

func (d *device) List(ctx context.Context) ([]fence.Outlet, error) {
	return within.Within(ctx, func() ([]fence.Outlet, error) {
		doms, _, err := d.lv.ConnectListAllDomains(1, 0)
		if err != nil {
			return nil, err
		}
		out := make([]fence.Outlet, 0, len(doms))
		for _, dom := range doms {
			o := fence.Outlet{ID: dom.Name, Alias: formatUUID(dom.UUID)}
			if st, _, err := d.lv.DomainGetState(dom, 0); err == nil {
				o.State = stateOf(golibvirt.DomainState(st))
			}
			out = append(out, o)
		}
		return out, nil
	})
}

func (d *device) Close() error { return d.lv.Disconnect() }
