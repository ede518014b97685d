package recovery

import (
	"context"
	"fmt"
	"time"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
)

// recreate deletes a VM and creates it again from the same specification: its name, project,
// flavor, image or boot volume, metadata, tags, key pair, user data, server group, and its
// ports (so its fixed addresses are kept; a port Nova deleted with the VM is created again
// with the same network, addresses and MAC address). For "cattle" whose owners chose it: the
// new VM has a new id, and whatever its host's disks held is gone.
type recreate struct{}

func (recreate) Name() MethodName   { return Recreate }
func (recreate) ByMigrations() bool { return false }
func (recreate) Placed() bool       { return true }

func (recreate) Start(ctx context.Context, x *run, m *move, attempt int) error {
	nova := x.e.o.Nova
	if m.spec == nil {
		var spec openstack.ServerSpec
		if err := x.e.nova(ctx, "read server spec", func(ctx context.Context) (err error) {
			spec, err = nova.ServerSpec(ctx, m.id)
			return err
		}); err != nil {
			return fmt.Errorf("reading what %s is made of: %w", m.id, err)
		}
		if spec.BootVolume != "" && spec.BootVolumeDeleteOnTerminate {
			return fmt.Errorf("%s boots from volume %s, which Nova deletes with the server: it cannot be recreated from it", m.id, spec.BootVolume)
		}
		m.spec = &spec
	}
	// The first attempt deletes the VM found on the source, a retry the copy that failed.
	if err := x.e.request(ctx, "delete server", func(ctx context.Context) error {
		err := nova.DeleteServer(ctx, m.id)
		if openstack.IsNotFound(err) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	if err := awaitGone(ctx, x, m.id); err != nil {
		return err
	}
	ports, err := keepPorts(ctx, x, m.spec.Ports)
	if err != nil {
		return err
	}
	spec := *m.spec
	spec.Ports, spec.Host = ports, m.target
	var id string
	if err := x.e.request(ctx, "create server", func(ctx context.Context) (err error) {
		id, err = nova.CreateServer(ctx, spec)
		return err
	}); err != nil {
		return err
	}
	m.spec.Ports = ports
	x.record(ctx, history.KindDecision, fmt.Sprintf("%s recreated as %s (attempt %d)", m.label(), id, attempt+1),
		Reason{Code: CodeRecreated, Text: fmt.Sprintf("flavor %s, image %q, boot volume %q, group %q, %d ports", spec.FlavorName, spec.ImageID, spec.BootVolume, spec.Group, len(ports))},
		map[string]string{"old_id": m.srv.ID, "new_id": id})
	m.id = id
	return nil
}

func (recreate) Check(_ context.Context, _ *run, m *move, o observation) (bool, string, error) {
	s := o.server
	switch {
	case s.TaskState == "" && s.Status == "ACTIVE" && s.Host != "":
		return true, s.Host, nil
	case s.Status == "ERROR":
		return false, "", fmt.Errorf("the recreated %s (%s) is in ERROR", m.srv.ID, m.id)
	}
	return false, "", nil
}

// awaitGone waits until Nova no longer has server id: a VM on a host whose service is down is
// deleted at once in Nova's database, one on a running host once its compute has destroyed
// it. Its ports are free only then.
func awaitGone(ctx context.Context, x *run, id string) error {
	deadline := x.e.clock.Now().Add(x.cfg().Evacuation.ConfirmTimeout)
	for {
		s, err := x.showServer(ctx, id)
		if openstack.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if x.e.clock.Now().After(deadline) {
			return fmt.Errorf("%s still exists %s after its deletion (status %s, task %q)", id, x.cfg().Evacuation.ConfirmTimeout, s.Status, s.TaskState)
		}
		if err := x.e.clock.Sleep(ctx, min(x.e.o.Poll, 200*time.Millisecond)); err != nil {
			return err
		}
	}
}

// keepPorts returns the ports to create the VM with: each port of the old VM that still exists
// and is bound to nothing, or a new one like it (same network, addresses, MAC address and
// security groups) when Nova deleted it with the VM.
func keepPorts(ctx context.Context, x *run, ports []openstack.Port) ([]openstack.Port, error) {
	out := make([]openstack.Port, 0, len(ports))
	for _, p := range ports {
		var cur openstack.Port
		err := x.e.nova(ctx, "show port", func(ctx context.Context) (err error) {
			cur, err = x.e.o.Nova.Port(ctx, p.ID)
			return err
		})
		switch {
		case err == nil && cur.DeviceID == "":
			out = append(out, cur)
			continue
		case err == nil:
			return nil, fmt.Errorf("port %s of the deleted VM is bound to %s", p.ID, cur.DeviceID)
		case !openstack.IsNotFound(err):
			return nil, err
		}
		like := p
		like.ID, like.DeviceID = "", ""
		var made openstack.Port
		if err := x.e.request(ctx, "create port", func(ctx context.Context) (err error) {
			made, err = x.e.o.Nova.CreatePort(ctx, like)
			return err
		}); err != nil {
			return nil, fmt.Errorf("creating port %s again: %w", p.ID, err)
		}
		out = append(out, made)
	}
	return out, nil
}
