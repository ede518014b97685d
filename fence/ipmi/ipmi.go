// Package ipmi is fence_ipmi: power fencing through a host's BMC over
// IPMI-over-LAN (IPMI 1.5 "lan" or 2.0 "lanplus"), in pure Go. Its options
// match fence_ipmilan's where they overlap, so a stonith device can switch
// agents by changing only the agent name.
package ipmi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/computeha/computeha/fence"
)

// Params are fence_ipmi's options.
type Params struct {
	IP      string `fence:"ip" old:"ipaddr" short:"a" metavar:"ip" required:"true" help:"IP address or hostname of the BMC"`
	IPPort  int    `fence:"ipport" short:"u" metavar:"port" default:"623" help:"UDP port of the BMC"`
	Lanplus bool   `fence:"lanplus" short:"P" default:"0" help:"Use IPMI 2.0 (lanplus, RMCP+) instead of IPMI 1.5"`
	Cipher  string `fence:"cipher" short:"C" metavar:"cipher" help:"Cipher suite for lanplus (same as ipmitool -C); empty means negotiate"`
	Privlvl string `fence:"privlvl" short:"L" metavar:"level" default:"administrator" choices:"callback,user,operator,administrator" help:"Privilege level on the BMC"`
	Kg      string `fence:"hexadecimal_kg" metavar:"key" secret:"true" help:"Hexadecimal-encoded Kg key for IPMIv2 authentication (not supported: must be empty)"`
	Method  string `fence:"method" short:"m" metavar:"method" default:"onoff" choices:"onoff,cycle" help:"Method to fence: onoff confirms the host is off; cycle may report success before it is"`
	fence.Credentials
	fence.Common
}

// UseCycle tells the runtime to reboot with one power-cycle command.
func (p *Params) UseCycle() bool { return p.Method == "cycle" }

// Validate checks what types alone cannot.
func (p *Params) Validate() error {
	if p.IPPort < 1 || p.IPPort > 65535 {
		return fmt.Errorf("ipport %d is not a UDP port (1-65535)", p.IPPort)
	}
	if p.Cipher != "" {
		n, err := strconv.Atoi(p.Cipher)
		if err != nil || n < 0 || n > 19 {
			return fmt.Errorf("cipher %q is not an IPMI cipher suite id (0-19)", p.Cipher)
		}
	}
	if p.Kg != "" {
		return fmt.Errorf("hexadecimal_kg is not supported by fence_ipmi; use fence_ipmilan for BMCs that require a Kg key")
	}
	if len(p.Username) > 16 {
		return fmt.Errorf("username is longer than the 16 characters IPMI allows")
	}
	return nil
}

// Agent is fence_ipmi.
var Agent = &fence.Agent{
	Name:      "fence_ipmi",
	ShortDesc: "Fence agent for IPMI (computeha, pure Go)",
	LongDesc: "fence_ipmi powers a host off and on through its BMC with IPMI-over-LAN. " +
		"It talks IPMI itself (no ipmitool process, so the password is never on a command line), " +
		"confirms every power change by reading the chassis power state back within power_timeout, " +
		"and accepts fence_ipmilan's options where they overlap. Use lanplus with an explicit cipher " +
		"(3 or 17) for the fastest, authenticated sessions.",
	VendorURL: "https://www.intel.com/content/www/us/en/products/docs/servers/ipmi/ipmi-home.html",
	NewParams: func() fence.Params { return &Params{} },
	Connect:   connect,
}

var privileges = map[string]types.PrivilegeLevel{
	"callback":      types.PrivilegeLevelCallback,
	"user":          types.PrivilegeLevelUser,
	"operator":      types.PrivilegeLevelOperator,
	"administrator": types.PrivilegeLevelAdministrator,
}

// requestTimeout bounds one UDP exchange; the library retries on timeout.
const requestTimeout = time.Second

func connect(ctx context.Context, fp fence.Params, log *slog.Logger) (fence.Device, error) {
	p := fp.(*Params)
	host := p.IP
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		// go-ipmi joins host and port itself; it needs IPv6 bare.
		host = strings.Trim(host, "[]")
	}
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", host, err)
	}
	c, err := client.NewClient(host, p.IPPort, p.Username, p.Password)
	if err != nil {
		return nil, err
	}
	c.WithTimeout(requestTimeout).WithRetry(2).WithMaxPrivilegeLevel(privileges[p.Privlvl])
	if p.Lanplus {
		c.WithInterface(client.InterfaceLanplus)
		if p.Cipher != "" {
			n, _ := strconv.Atoi(p.Cipher)
			c.WithCipherSuiteID(types.CipherSuiteID(n))
		}
	} else {
		c.WithInterface(client.InterfaceLan)
	}
	log.Debug("connecting to BMC", "ip", p.IP, "port", p.IPPort, "lanplus", p.Lanplus, "cipher", p.Cipher)
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return &device{c: c}, nil
}

// device is a logged-in BMC session.
type device struct{ c *client.Client }

var (
	_ fence.Device = (*device)(nil)
	_ fence.Cycler = (*device)(nil)
)

func (d *device) Status(ctx context.Context, _ string) (fence.State, error) {
	st, err := d.c.GetChassisStatus(ctx)
	if err != nil {
		return fence.Unknown, err
	}
	if st.PowerIsOn {
		return fence.On, nil
	}
	return fence.Off, nil
}

func (d *device) SetPower(ctx context.Context, _ string, on bool) error {
	ctl := chassis.ChassisControlPowerDown
	if on {
		ctl = chassis.ChassisControlPowerUp
	}
	_, err := d.c.ChassisControl(ctx, ctl)
	return err
}

func (d *device) Cycle(ctx context.Context, _ string) error {
	_, err := d.c.ChassisControl(ctx, chassis.ChassisControlPowerCycle)
	return err
}

func (d *device) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	return d.c.Close(ctx)
}
