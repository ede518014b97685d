package novacompute

import (
	"regexp"
	"strings"
	"time"

	"github.com/computeha/computeha/agents"
)

// Params are the parameters of ocf:computeha:nova-compute (the pcs
// interface: pcs resource create nc ocf:computeha:nova-compute cloud=...).
type Params struct {
	Host           string        `ocf:"host" help:"Name of this node's compute service in Nova" long:"The host name of this node's nova-compute service in Nova ([DEFAULT] host in nova.conf). When empty, the Pacemaker node name (OCF_RESKEY_CRM_meta_on_node) is used, or else the machine's host name; domain is then appended. Give it only if Nova knows the node under another name."`
	Domain         string        `ocf:"domain" help:"DNS domain appended to the node name to form the Nova host name" long:"Appended, after a dot, to the Pacemaker node name (or the machine's host name) when host is not given and the name has no dot yet. Use it when Pacemaker knows the nodes by short names and Nova by fully qualified ones."`
	Cloud          string        `ocf:"cloud" required:"true" help:"Entry of clouds.yaml with the credentials for the Nova API" long:"The name of the cloud in clouds_yaml whose credentials the agent uses to read and correct this host's compute service (forced_down, enabled). The credentials need the os-services API (usually the admin role)."`
	CloudsYAML     string        `ocf:"clouds_yaml" default:"/etc/openstack/clouds.yaml" help:"Path of the clouds.yaml file" long:"The clouds.yaml file that holds cloud. Keep it readable by root only: it holds a password or an application credential secret, which the agent never logs."`
	Service        string        `ocf:"service" default:"nova-compute" help:"systemd unit of nova-compute" long:"The systemd unit the agent starts, stops and watches. Not used when start_command is given."`
	StartCommand   string        `ocf:"start_command" help:"Command that runs nova-compute in the foreground, instead of systemd" long:"When given, the agent does not use systemd: it runs this command with /bin/sh -c in a new session, in the background, with standard output and error going to a file in HA_RSCTMP, and records its process id and start time in HA_RSCTMP. The command must stay in the foreground while nova-compute runs. Monitor checks that recorded process; stop sends SIGTERM to its process group (or runs stop_command), then SIGKILL when it has not exited in time."`
	StopCommand    string        `ocf:"stop_command" help:"Command that makes nova-compute exit, instead of SIGTERM (with start_command)" long:"Only with start_command: run with /bin/sh -c to stop nova-compute, instead of sending SIGTERM to the recorded process group. The agent still waits for the recorded process to exit, and sends SIGKILL when it has not exited before the stop timeout."`
	EvacuationWait bool          `ocf:"evacuation_wait" default:"true" help:"Start nova-compute only when no evacuation from this host is pending" long:"When true, start waits, within the start timeout, until computeha reports no evacuation pending for this host: nova-compute deletes the local copies of evacuated instances when it starts, so it must not start while they are being rebuilt elsewhere. When the evacuation state cannot be read, start keeps trying and fails at its timeout. Set false only where no evacuation is ever done for this host."`
	NovaTimeout    time.Duration `ocf:"nova_timeout" default:"10s" help:"Longest time one Nova API call may take" long:"Bound of each Nova API call and each read of the evacuation state; every call is also bounded by what is left of the operation timeout. A monitor whose Nova call times out reports OCF_DEGRADED, not a failure."`
}

var (
	// unitName is what systemd accepts as a unit name, without a template
	// argument containing spaces.
	unitName = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+$`)
	hostName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// check validates values that need nothing but themselves.
func (p *Params) check() error {
	if strings.TrimSpace(p.Cloud) == "" {
		return agents.Configured("parameter cloud is required")
	}
	if p.Host != "" && !hostName.MatchString(p.Host) {
		return agents.Configured("host %q is not a host name", p.Host)
	}
	p.Domain = strings.Trim(p.Domain, ".")
	if p.Domain != "" && !hostName.MatchString(p.Domain) {
		return agents.Configured("domain %q is not a DNS domain", p.Domain)
	}
	if p.StopCommand != "" && p.StartCommand == "" {
		return agents.Configured("stop_command needs start_command (with systemd, the unit stops nova-compute)")
	}
	if p.StartCommand == "" && !unitName.MatchString(p.Service) {
		return agents.Configured("service %q is not a systemd unit name", p.Service)
	}
	if p.NovaTimeout <= 0 {
		return agents.Configured("nova_timeout must be more than 0")
	}
	return nil
}

// binaries lists the programs the configuration needs.
func binaries(v any) []string {
	p := v.(*Params)
	if p.StartCommand == "" {
		return []string{"systemctl"}
	}
	bins := []string{"/bin/sh"}
	for _, c := range []string{p.StartCommand, p.StopCommand} {
		if b := simpleProgram(c); b != "" {
			bins = append(bins, b)
		}
	}
	return bins
}

// simpleProgram is the program a command runs, when the command is a plain
// "program args..." line; "" when shell syntax makes it unclear.
func simpleProgram(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 || strings.ContainsAny(cmd, "|&;<>()$`\\\"'*?[]#~=%{}") {
		return ""
	}
	switch f[0] {
	case "exec", "env", "command", "nohup", "cd", "test", "[":
		return ""
	}
	return f[0]
}
