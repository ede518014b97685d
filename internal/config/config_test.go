package config

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/invalid")

func TestLoadExampleGivesTheDocumentedValues(t *testing.T) {
	c, err := Load("../../packaging/etc/evacd.yaml.example")
	if err != nil {
		t.Fatalf("the packaged example must validate: %v", err)
	}
	want := &Config{
		Cloud:      "overcloud",
		CloudsYAML: "/etc/openstack/clouds.yaml",
		Segments: Segments{
			"rack-a": {
				Hosts:          []string{"compute-a1", "compute-a2", "compute-a3", "compute-a4"},
				RecoveryMethod: RecoveryRHPriority,
				ReservedHosts:  []string{"compute-a4"},
				ReservedReturn: ReservedReturnManual,
				Admission:      "reserved",
			},
			"gpu": {Aggregate: "gpu-hosts", RecoveryMethod: RecoveryAuto},
		},
		Policy: Policy{
			Default:           true,
			FlavorKey:         "evacuable",
			ImageKey:          "evacuable",
			MetadataKey:       "HA_Enabled",
			TagKey:            "evacuable",
			Aggregates:        map[string]bool{"batch-hosts": false},
			AvailabilityZones: map[string]bool{"scratch": false},
			Projects:          map[string]bool{"0f4c2b7e9a3d4e51b8a6c2d1e0f9a8b7": true},
			Recovery: RecoveryPolicy{
				Default: ClassEvacuate, FlavorKey: "computeha:recovery", ImageKey: "computeha_recovery",
				MetadataKey: "computeha_recovery", TagKey: "computeha_recovery",
				Projects: map[string]Class{"7d1e0c4b2a9f4e3d8c6b5a4f3e2d1c0b": ClassRecreate},
				Cells:    map[string]Class{"cell1": ClassEvacuate},
			},
			IOError: IOErrorPolicy{
				Default: IOErrorResume, FlavorKey: "computeha:io_error", ImageKey: "computeha_io_error",
				MetadataKey: "computeha_io_error", TagKey: "computeha_io_error",
				Projects: map[string]IOErrorAction{"7d1e0c4b2a9f4e3d8c6b5a4f3e2d1c0b": IOErrorLeavePaused},
			},
		},
		Cells: Cells{"cell1": {Aggregate: "cell1-hosts"}},
		Evacuation: Evacuation{
			Concurrency:        8,
			Retries:            3,
			RetryBackoff:       Backoff{Initial: 2 * time.Second, Max: 30 * time.Second},
			ErrorVMs:           ErrorVMsEvacuate,
			RestartPriority:    []string{"restart_priority"},
			ConfirmTimeout:     5 * time.Minute,
			PerHostConcurrency: 10,
			Tiers:              Tiers{Timeout: 5 * time.Minute},
			Refresh:            10 * time.Second,
		},
		Guard:   Guard{MaxHosts: 3, Window: 10 * time.Minute, MaxSegmentFraction: 0.5},
		History: History{Driver: DriverSQLite, DSN: "/var/lib/computeha/history.db", Retention: 9600 * time.Hour},
		Health: Health{
			SharedDir:      "/var/lib/computeha/shared",
			Interval:       time.Second,
			StaleAfter:     4 * time.Second,
			ClockSkew:      2 * time.Second,
			ProbeFailures:  3,
			Confirm:        2 * time.Second,
			RestartTimeout: time.Minute,
			RejoinGrace:    30 * time.Second,
			RestartCommand: "systemctl restart pacemaker_remote",
			Decide:         15 * time.Second,
			Networks: []Network{
				{Name: "mgmt", Management: true, Response: ResponseDisable},
				{Name: "tenant", Response: ResponseMigrate},
				{Name: "storage", Response: ResponseFence},
			},
			Hosts: map[string]map[string]string{
				"controller-1": {"mgmt": "192.0.2.11", "tenant": "198.51.100.11", "storage": "203.0.113.11"},
				"controller-2": {"mgmt": "192.0.2.12", "tenant": "198.51.100.12", "storage": "203.0.113.12"},
				"controller-3": {"mgmt": "192.0.2.13", "tenant": "198.51.100.13", "storage": "203.0.113.13"},
				"compute-a1":   {"mgmt": "192.0.2.21", "tenant": "198.51.100.21", "storage": "203.0.113.21"},
				"compute-a2":   {"mgmt": "192.0.2.22", "tenant": "198.51.100.22", "storage": "203.0.113.22"},
			},
			Watchdog: Watchdog{Timeout: 10 * time.Second, SelfFenceAfter: 10 * time.Second, Observers: []string{}, Margin: 2 * time.Second},
			Gossip:   Gossip{Port: DefaultGossipPort, Seeds: []string{}},
		},
		Metrics: Metrics{CapacityInterval: 5 * time.Minute},
		API: API{
			MonitorRoles: []string{"admin"}, SignalRoles: []string{"member"}, SignalWindow: time.Minute, SignalBurst: 5,
		},
		Instances: Instances{
			MaxRestarts: 3, RestartWindow: time.Hour, StormHost: 30, StormCloud: 100, StormWindow: 10 * time.Minute,
			ProcessGiveUp: time.Minute, ResumeDelay: DefaultResumeDelay,
		},
		Alerts: Alerts{
			Labels:       map[string]string{"cluster": "overcloud"},
			Resend:       time.Minute,
			Alertmanager: &Alertmanager{URLs: []string{"http://192.0.2.5:9093"}, Timeout: 10 * time.Second},
		},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("example (-want +got):\n%s", diff)
	}
}

func TestAMinimalFileGetsEveryDefault(t *testing.T) {
	c, err := Parse([]byte("cloud: x\nsegments:\n  s:\n    hosts: [c1, c2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Cloud = "x"
	want.Segments = Segments{"s": {Hosts: []string{"c1", "c2"}, RecoveryMethod: RecoveryAuto}}
	want.History.DSN = DefaultSQLiteDSN
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestParseAcceptsValidVariants(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(*Config) string
	}{
		{
			"a mysql history whose DSN is in a file",
			"cloud: x\nsegments: {s: {hosts: [a, b]}}\nhistory: {driver: mysql, dsn_file: /etc/computeha/dsn}\n",
			func(c *Config) string {
				return cmp.Diff(History{Driver: DriverMySQL, DSNFile: "/etc/computeha/dsn"}, c.History)
			},
		},
		{
			"a mysql DSN without a password may stay inline",
			"cloud: x\nsegments: {s: {hosts: [a, b]}}\nhistory: {driver: mysql, dsn: \"evacd@unix(/run/mysqld/mysqld.sock)/ha\"}\n",
			func(c *Config) string { return cmp.Diff(DriverMySQL, c.History.Driver) },
		},
		{
			"policy booleans accept yes/no and on/off in any usual case",
			"cloud: x\nsegments: {s: {hosts: [a, b]}}\npolicy: {default: No, projects: {p1: YES, p2: off}}\n",
			func(c *Config) string {
				return cmp.Diff(Policy{
					FlavorKey: "evacuable", ImageKey: "evacuable", MetadataKey: "HA_Enabled", TagKey: "evacuable",
					Projects: map[string]bool{"p1": true, "p2": false}, Recovery: DefaultRecoveryPolicy(), IOError: DefaultIOErrorPolicy(),
				}, c.Policy)
			},
		},
		{
			"an empty section keeps its defaults",
			"cloud: x\nsegments: {s: {hosts: [a, b]}}\nevacuation:\nguard:\n",
			func(c *Config) string { return cmp.Diff(Default().Evacuation, c.Evacuation) },
		},
		{
			"zero retries disables retrying",
			"cloud: x\nsegments: {s: {hosts: [a, b]}}\nevacuation: {retries: 0}\n",
			func(c *Config) string { return cmp.Diff(0, c.Evacuation.Retries) },
		},
		{
			"YAML merge keys fill a segment",
			"cloud: x\nsegments:\n  s: &s {hosts: [a, b], recovery_method: auto_priority, reserved_hosts: [b]}\n  t: {<<: *s, hosts: [c, d], reserved_hosts: [d]}\n",
			func(c *Config) string {
				return cmp.Diff(Segment{Hosts: []string{"c", "d"}, RecoveryMethod: RecoveryAutoPriority, ReservedHosts: []string{"d"}}, c.Segments["t"])
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := tt.check(c); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestInvalidConfigsAreRejectedWithEveryProblem compares the error of each
// testdata/invalid/NAME.yaml with NAME.golden; go test -update rewrites the goldens.
func TestInvalidConfigsAreRejectedWithEveryProblem(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("Load accepted an invalid config")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationProblemsNameTheFieldInTheirOwnLine(t *testing.T) {
	_, err := Load("testdata/invalid/segments.yaml")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *config.Error", err)
	}
	for _, want := range []string{
		`segments.seg-a.recovery_method: "fast" is not one of auto, reserved_host, auto_priority, rh_priority`,
		`segments.seg-b.hosts: "c3" is also in segment seg-a; a host belongs to one segment`,
		`segments.seg-a.reserved_hosts: "c9" is not in the segment's hosts`,
	} {
		found := false
		for _, p := range ce.Problems {
			found = found || p == want
		}
		if !found {
			t.Errorf("missing problem %q in:\n%s", want, strings.Join(ce.Problems, "\n"))
		}
	}
}

func TestAnInlineMySQLPasswordIsRefusedWithoutBeingEchoed(t *testing.T) {
	_, err := Load("testdata/invalid/mysql-password.yaml")
	if err == nil {
		t.Fatal("an inline password was accepted")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error leaks the password: %v", err)
	}
}

func TestLoadOfAMissingFileSaysWhichFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("err = %v, want a wrapped ErrNotExist naming the file", err)
	}
}

func TestReadDSN(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "dsn")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(good, []byte("u:pw@tcp(db:3306)/ha\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		h       History
		want    string
		wantErr string
	}{
		{"an inline DSN is returned as it is", History{DSN: "/var/lib/h.db"}, "/var/lib/h.db", ""},
		{"a DSN file is read without its trailing newline", History{DSNFile: good}, "u:pw@tcp(db:3306)/ha", ""},
		{"an empty DSN file is an error", History{DSNFile: empty}, "", "is empty"},
		{"a missing DSN file is an error naming the field", History{DSNFile: filepath.Join(dir, "no")}, "", "history.dsn_file:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.h.ReadDSN()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Errorf("error leaks the DSN: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ReadDSN() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveSegments(t *testing.T) {
	base := func() *Config {
		c := Default()
		c.Cloud = "x"
		c.Segments = Segments{
			"static": {Hosts: []string{"c1", "c2"}, RecoveryMethod: RecoveryAuto},
			"agg":    {Aggregate: "ha-agg", RecoveryMethod: RecoveryRHPriority, ReservedHosts: []string{"c5"}},
		}
		return c
	}
	tests := []struct {
		name    string
		aggs    map[string][]string
		want    Segments
		wantErr []string
	}{
		{
			"an aggregate segment takes the aggregate's hosts",
			map[string][]string{"ha-agg": {"c3", "c4", "c5"}},
			Segments{
				"static": {Hosts: []string{"c1", "c2"}, RecoveryMethod: RecoveryAuto},
				"agg":    {Hosts: []string{"c3", "c4", "c5"}, RecoveryMethod: RecoveryRHPriority, ReservedHosts: []string{"c5"}},
			},
			nil,
		},
		{
			"a missing aggregate, a shared host and a reserved host outside the aggregate are all reported",
			map[string][]string{"other": {"c9"}},
			nil,
			[]string{
				`segments.agg.aggregate: no aggregate named "ha-agg"`,
				`segments.agg: needs hosts (a list) or aggregate (a Nova aggregate name)`,
				`segments.agg.reserved_hosts: "c5" is not in the segment's hosts`,
			},
		},
		{
			"a host of an aggregate that a static segment also lists is reported",
			map[string][]string{"ha-agg": {"c2", "c5"}},
			nil,
			[]string{`segments.static.hosts: "c2" is also in segment agg; a host belongs to one segment`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			got, err := c.ResolveSegments(tt.aggs)
			if tt.wantErr != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *config.Error", err)
				}
				if diff := cmp.Diff(tt.wantErr, ce.Problems); diff != "" {
					t.Errorf("problems (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("segments (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(base().Segments, c.Segments); diff != "" {
				t.Errorf("the receiver changed (-want +got):\n%s", diff)
			}
			if seg, ok := got.Of("c4"); !ok || seg != "agg" {
				t.Errorf("Of(c4) = %q, %v; want agg, true", seg, ok)
			}
			if _, ok := got.Of("nowhere"); ok {
				t.Error("Of(nowhere) found a segment")
			}
		})
	}
}

func TestRecoveryMethodUsesReservedHosts(t *testing.T) {
	got := map[RecoveryMethod]bool{}
	for _, m := range RecoveryMethods {
		got[m] = m.UsesReservedHosts()
	}
	want := map[RecoveryMethod]bool{
		RecoveryAuto: false, RecoveryReservedHost: true, RecoveryAutoPriority: true, RecoveryRHPriority: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzParse checks that no input makes the decoder panic, and that whatever Parse accepts
// also passes Validate. The seed corpus (every testdata file) runs in every go test.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, p := range append(files, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\nx: &a [*a]\n"))
	f.Add([]byte("cloud: x\nsegments: {s: {<<: {hosts: [a, b]}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}

func TestMetricsListenAddresses(t *testing.T) {
	for in, want := range map[string][]string{
		"metrics: {listen: ':9731', hostcheck_listen: ':9732'}\n": nil,
		"metrics: {listen: ':9731', hostcheck_listen: ':9731'}\n": {"metrics.hostcheck_listen: :9731 is metrics.listen too; on a controller both would take it"},
		"metrics: {hostcheck_listen: 'nope'}\n":                   {`metrics.hostcheck_listen: "nope" is not host:port (address nope: missing port in address)`},
		"metrics: {hostcheck_listen: ':0'}\n":                     {`metrics.hostcheck_listen: port "0" is not a number from 1 to 65535`},
		"metrics: {capacity_interval: 0s}\n":                      nil,
		"metrics: {capacity_interval: 10s}\n":                     {"metrics.capacity_interval: 10s is neither 0 (off) nor at least 30s"},
	} {
		_, err := Parse([]byte(alertsBase + in))
		var got []string
		var ce *Error
		if errors.As(err, &ce) {
			got = ce.Problems
		} else if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", in, diff)
		}
	}
}

func TestReadSegmentsReadsTheAggregatesOnlyWhenASegmentIsDefinedByOne(t *testing.T) {
	c := Default()
	c.Cloud = "x"
	c.Segments = Segments{"static": {Hosts: []string{"c1", "c2"}, RecoveryMethod: RecoveryAuto}}
	reads := 0
	read := func(context.Context) (map[string][]string, error) {
		reads++
		return map[string][]string{"ha-agg": {"c3", "c4"}}, nil
	}
	if segs, err := c.ReadSegments(t.Context(), read); err != nil || reads != 0 || len(segs["static"].Hosts) != 2 {
		t.Fatalf("static segments only: %v, %v, %d aggregate reads; want them resolved without a read", segs, err, reads)
	}
	c.Segments["agg"] = Segment{Aggregate: "ha-agg", RecoveryMethod: RecoveryAuto}
	segs, err := c.ReadSegments(t.Context(), read)
	if err != nil || reads != 1 || !slices.Equal(segs["agg"].Hosts, []string{"c3", "c4"}) {
		t.Fatalf("an aggregate segment: %v, %v, %d aggregate reads; want its hosts from one read", segs, err, reads)
	}
	down := errors.New("nova down")
	if _, err := c.ReadSegments(t.Context(), func(context.Context) (map[string][]string, error) { return nil, down }); !errors.Is(err, down) {
		t.Errorf("a failed read: %v, want it wrapped", err)
	}
}
