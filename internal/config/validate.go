package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Validate checks the configuration and returns nil or an *[Error] listing every problem (in
// the order of the file's sections, segments by name), each starting with the dotted name of the field it is about. Aggregate-defined
// segments are checked as far as possible; [Config.ResolveSegments] checks the rest.
func (c *Config) Validate() error {
	var p problems
	if strings.TrimSpace(c.Cloud) == "" {
		p.add("cloud: required (the clouds.yaml entry the daemon authenticates with)")
	}
	if len(c.Segments) == 0 {
		p.add("segments: at least one segment is required")
	}
	p = append(p, validateSegments(c.Segments)...)
	c.validateNames(&p)
	c.Cells.validate(&p)
	c.Policy.validate(&p)
	c.Policy.Recovery.validate(RecoverySection, c.Cells, &p)
	c.Policy.IOError.validate(IOErrorSection, c.Cells, &p)
	for _, name := range sortedBoolKeys(c.Policy.Cells) {
		if !hasCell(c.Cells, name) {
			p.add("policy.cells.%s: no cell of that name in cells", name)
		}
	}
	c.Evacuation.validate(&p)
	c.Guard.validate(&p)
	c.History.validate(&p)
	c.Health.validate(&p)
	c.Metrics.validate(&p)
	c.API.validate(&p, c.Metrics)
	c.Instances.validate(&p)
	c.Alerts.validate(&p)
	if len(p) == 0 {
		return nil
	}
	return &Error{Problems: p}
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// validateSegments checks each segment and the hosts across segments. Segments are visited in
// name order so the messages are stable; a host in two segments is reported at the later one.
func validateSegments(segs Segments) problems {
	var p problems
	owner := map[string]string{} // host → first segment listing it
	for _, name := range segs.Names() {
		s := segs[name]
		f := "segments." + name
		if strings.TrimSpace(name) == "" {
			p.add("segments: a segment has an empty name")
			f = `segments.""`
		}
		switch {
		case len(s.Hosts) > 0 && s.Aggregate != "":
			p.add("%s: set either hosts or aggregate, not both", f)
		case len(s.Hosts) == 0 && s.Aggregate == "":
			p.add("%s: needs hosts (a list) or aggregate (a Nova aggregate name)", f)
		case len(s.Hosts) == 1:
			p.add("%s.hosts: a segment needs at least two hosts, or a failed host's VMs have nowhere to go", f)
		}
		if !oneOf(s.RecoveryMethod, RecoveryMethods) {
			p.add("%s.recovery_method: %q is not one of %s", f, s.RecoveryMethod, list(RecoveryMethods))
		}
		if s.ReservedReturn != "" && !oneOf(s.ReservedReturn, ReservedReturns) {
			p.add("%s.reserved_return: %q is not one of %s", f, s.ReservedReturn, list(ReservedReturns))
		}
		if s.Admission != "" {
			switch a, err := ParseAdmission(s.Admission); {
			case err != nil:
				p.add("%s.admission: %v", f, err)
			case a.Kind == AdmissionReserved && len(s.ReservedHosts) == 0:
				p.add("%s.admission: reserved needs reserved_hosts", f)
			case a.Kind == AdmissionHosts && len(s.Hosts) > 0 && a.Hosts >= len(s.Hosts):
				p.add("%s.admission: %s asks the segment to lose %d of its %d hosts", f, a, a.Hosts, len(s.Hosts))
			}
		}
		members := map[string]bool{}
		for i, h := range s.Hosts {
			switch {
			case strings.TrimSpace(h) == "":
				p.add("%s.hosts[%d]: empty host name", f, i)
			case members[h]:
				p.add("%s.hosts: %q is listed twice", f, h)
			case owner[h] != "":
				p.add("%s.hosts: %q is also in segment %s; a host belongs to one segment", f, h, owner[h])
			default:
				owner[h] = name
			}
			members[h] = true
		}
		reserved := map[string]bool{}
		for i, h := range s.ReservedHosts {
			switch {
			case strings.TrimSpace(h) == "":
				p.add("%s.reserved_hosts[%d]: empty host name", f, i)
			case reserved[h]:
				p.add("%s.reserved_hosts: %q is listed twice", f, h)
			case s.Aggregate == "" && !members[h]:
				p.add("%s.reserved_hosts: %q is not in the segment's hosts", f, h)
			}
			reserved[h] = true
		}
		needReserved := s.RecoveryMethod == RecoveryReservedHost || s.RecoveryMethod == RecoveryRHPriority
		if needReserved && len(s.ReservedHosts) == 0 {
			p.add("%s.reserved_hosts: recovery_method %s needs at least one reserved host", f, s.RecoveryMethod)
		}
		if s.RecoveryMethod == RecoveryAuto && len(s.Hosts) > 0 && len(reserved) >= len(members) {
			p.add("%s.reserved_hosts: every host is reserved, so recovery_method auto has no host to use", f)
		}
	}
	return p
}

func (pol Policy) validate(p *problems) {
	for _, k := range []struct{ field, v string }{
		{"flavor_key", pol.FlavorKey},
		{"image_key", pol.ImageKey},
		{"metadata_key", pol.MetadataKey},
		{"tag_key", pol.TagKey},
	} {
		if strings.TrimSpace(k.v) == "" {
			p.add("policy.%s: must not be empty", k.field)
		}
	}
	if strings.Contains(pol.TagKey, "=") {
		p.add("policy.tag_key: %q must not contain '='; tags are read as key or key=value", pol.TagKey)
	}
	for _, m := range []struct {
		field string
		rules map[string]bool
	}{{"aggregates", pol.Aggregates}, {"availability_zones", pol.AvailabilityZones}, {"projects", pol.Projects}, {"cells", pol.Cells}} {
		for name := range m.rules {
			if strings.TrimSpace(name) == "" {
				p.add("policy.%s: a rule has an empty name", m.field)
			}
		}
	}
}

func (e Evacuation) validate(p *problems) {
	if e.Concurrency < 1 {
		p.add("evacuation.concurrency: %d is below 1", e.Concurrency)
	}
	if e.Retries < 0 {
		p.add("evacuation.retries: %d is negative", e.Retries)
	}
	positive(p, "evacuation.retry_backoff.initial", e.RetryBackoff.Initial)
	positive(p, "evacuation.retry_backoff.max", e.RetryBackoff.Max)
	if e.RetryBackoff.Initial > 0 && e.RetryBackoff.Max > 0 && e.RetryBackoff.Max < e.RetryBackoff.Initial {
		p.add("evacuation.retry_backoff.max: %s is shorter than initial %s", e.RetryBackoff.Max, e.RetryBackoff.Initial)
	}
	if !oneOf(e.ErrorVMs, ErrorVMsChoices) {
		p.add("evacuation.error_vms: %q is not one of %s", e.ErrorVMs, list(ErrorVMsChoices))
	}
	for i, k := range e.RestartPriority {
		if strings.TrimSpace(k) == "" {
			p.add("evacuation.restart_priority[%d]: empty property name", i)
		}
	}
	positive(p, "evacuation.confirm_timeout", e.ConfirmTimeout)
	if e.PerHostConcurrency < 1 {
		p.add("evacuation.per_host_concurrency: %d is below 1", e.PerHostConcurrency)
	}
	if e.Refresh < 0 {
		p.add("evacuation.refresh: %s is negative (0 turns the rereads off)", e.Refresh)
	}
	e.Tiers.validate(p)
}

func sortedBoolKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (g Guard) validate(p *problems) {
	if g.MaxHosts < 1 {
		p.add("guard.max_hosts: %d is below 1", g.MaxHosts)
	}
	positive(p, "guard.window", g.Window)
	// The negated form also rejects NaN.
	if !(g.MaxSegmentFraction > 0 && g.MaxSegmentFraction <= 1) || math.IsNaN(g.MaxSegmentFraction) {
		p.add("guard.max_segment_fraction: %v is not in (0, 1]", g.MaxSegmentFraction)
	}
}

func (h History) validate(p *problems) {
	if !oneOf(h.Driver, Drivers) {
		p.add("history.driver: %q is not one of %s", h.Driver, list(Drivers))
	}
	switch {
	case h.DSN != "" && h.DSNFile != "":
		p.add("history: set dsn or dsn_file, not both")
	case h.DSN == "" && h.DSNFile == "":
		p.add("history: %s needs dsn or dsn_file", h.Driver)
	}
	// The value itself is never echoed: it may hold the password.
	if h.Driver == DriverMySQL && dsnHasPassword(h.DSN) {
		p.add("history.dsn: holds a password; put the DSN in a root-only file named by history.dsn_file")
	}
	if h.Retention != 0 && h.Retention < MinRetention {
		p.add("history.retention: %s is shorter than %s (0 keeps everything)", h.Retention, MinRetention)
	}
}

// dsnHasPassword recognises user:password@ in a go-sql-driver DSN or a URL.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	// go-sql-driver: [user[:password]@][net[(addr)]]/dbname[?params]; the credentials end at
	// the last '@' before the last '/'.
	if slash := strings.LastIndex(dsn, "/"); slash >= 0 {
		dsn = dsn[:slash]
	}
	at := strings.LastIndex(dsn, "@")
	return at > 0 && strings.Contains(dsn[:at], ":")
}

func positive(p *problems, field string, d time.Duration) {
	if d <= 0 {
		p.add("%s: must be positive, got %s", field, d)
	}
}

func oneOf[T ~string](v T, choices []T) bool {
	for _, c := range choices {
		if v == c {
			return true
		}
	}
	return false
}

func list[T ~string](choices []T) string {
	s := make([]string, len(choices))
	for i, c := range choices {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

func (m Metrics) validate(p *problems) {
	checkListen(p, "metrics.listen", m.Listen)
	checkListen(p, "metrics.hostcheck_listen", m.HostcheckListen)
	if m.CapacityInterval != 0 && m.CapacityInterval < MinCapacityInterval {
		p.add("metrics.capacity_interval: %s is neither 0 (off) nor at least %s", m.CapacityInterval, MinCapacityInterval)
	}
	if m.Listen != "" && m.Listen == m.HostcheckListen {
		p.add("metrics.hostcheck_listen: %s is metrics.listen too; on a controller both would take it", m.Listen)
	}
}

func (a API) validate(p *problems, m Metrics) {
	checkListen(p, "api.listen", a.Listen)
	if a.Listen != "" && (a.Listen == m.Listen || a.Listen == m.HostcheckListen) {
		p.add("api.listen: %s is a metrics address too", a.Listen)
	}
	if a.URL != "" {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("api.url: %q is not an http:// or https:// URL", a.URL)
		}
	}
	for i, r := range a.MonitorRoles {
		if strings.TrimSpace(r) == "" {
			p.add("api.monitor_roles[%d]: empty", i)
		}
	}
	for i, r := range a.SignalRoles {
		if strings.TrimSpace(r) == "" {
			p.add("api.signal_roles[%d]: empty", i)
		}
	}
	if a.SignalWindow < 0 {
		p.add("api.signal_window: %s is negative", a.SignalWindow)
	}
	if a.SignalBurst < 0 {
		p.add("api.signal_burst: %d is negative", a.SignalBurst)
	}
}

func (i Instances) validate(p *problems) {
	for _, f := range []struct {
		name string
		n    int
	}{{"max_restarts", i.MaxRestarts}, {"storm_host", i.StormHost}, {"storm_cloud", i.StormCloud}} {
		if f.n < 0 {
			p.add("instances.%s: %d is negative", f.name, f.n)
		}
	}
	if i.MaxRestarts > 0 && i.RestartWindow <= 0 {
		p.add("instances.restart_window: %s is not positive", i.RestartWindow)
	}
	if i.ResumeDelay < 0 {
		p.add("instances.resume_delay: %s is negative", i.ResumeDelay)
	}
	if (i.StormHost > 0 || i.StormCloud > 0) && i.StormWindow <= 0 {
		p.add("instances.storm_window: %s is not positive", i.StormWindow)
	}
	seen := map[string]bool{}
	for k, pr := range i.Processes {
		switch {
		case strings.TrimSpace(pr.Name) == "" || strings.ContainsAny(pr.Name, "/ \t"):
			p.add("instances.processes[%d].name: %q is not a process name", k, pr.Name)
		case seen[pr.Name]:
			p.add("instances.processes[%d].name: %s is listed twice", k, pr.Name)
		case pr.Name == "nova-compute":
			p.add("instances.processes[%d].name: nova-compute is restarted by its Pacemaker clone (ocf:computeha:nova-compute), not here", k)
		}
		seen[pr.Name] = true
		if strings.TrimSpace(pr.RestartCommand) == "" {
			p.add("instances.processes[%d].restart_command: required", k)
		}
	}
	if len(i.Processes) > 0 && i.ProcessGiveUp <= 0 {
		p.add("instances.process_give_up: %s is not positive", i.ProcessGiveUp)
	}
}

func checkListen(p *problems, field, listen string) {
	if listen == "" {
		return
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		p.add("%s: %q is not host:port (%v)", field, listen, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add("%s: port %q is not a number from 1 to 65535", field, port)
	}
}
