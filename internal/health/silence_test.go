package health

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
)

func silenceConfig() *config.Health {
	h := config.DefaultHealth()
	h.SharedDir = "/shared"
	h.Networks = []config.Network{{Name: "mgmt", Management: true}, {Name: "storage"}}
	h.Hosts = map[string]map[string]string{
		"ctl1": {"mgmt": "10.0.0.11", "storage": "10.1.0.11"},
		"ctl2": {"mgmt": "10.0.0.12"},
		"cmp1": {"mgmt": "10.0.0.21", "storage": "10.1.0.21"},
		"cmp2": {"mgmt": "10.0.0.22", "storage": "10.1.0.22"},
	}
	h.Watchdog = config.Watchdog{
		Device: "/dev/watchdog", Timeout: 5 * time.Second, SelfFenceAfter: 6 * time.Second,
		Observers: []string{"ctl1", "ctl2"}, Margin: time.Second,
	}
	return &h
}

func TestSilentUntil(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) string { return "@" + strconv.FormatInt(t0.Add(d).UnixMilli(), 10) }
	rec := &Record{
		Host: "cmp1", Seq: 9, Time: t0, Service: ServiceOK,
		Watchdog: &RecordWatchdog{TimeoutMS: 5000, SelfFenceAfterMS: 6000},
	}
	allLost := map[string]map[string]string{
		"mgmt":    {"ctl1": "cmp1=lost" + ms(3*time.Second) + " cmp2=ok", "ctl2": "cmp1=lost" + ms(time.Second)},
		"storage": {"ctl1": "cmp1=lost" + ms(-time.Second)},
	}
	online := map[string]bool{"ctl1": true, "ctl2": true}
	// Last contact: ctl1 heard it on mgmt 3s after its last heartbeat, +2s of skew = t0+5s;
	// then 6s alone, a round of 1s, the 5s countdown and the 1s margin: t0+18s.
	want := t0.Add(18 * time.Second)
	tests := []struct {
		name    string
		mod     func(cfg *config.Health, ev *SilenceEvidence)
		want    time.Time
		missing string
	}{
		{"every observer sees it lost: off by the bound after its last contact", func(*config.Health, *SilenceEvidence) {}, want, ""},
		{"a longer countdown in its record than configured counts", func(_ *config.Health, ev *SilenceEvidence) {
			r := *rec
			r.Watchdog = &RecordWatchdog{TimeoutMS: 9000, SelfFenceAfterMS: 6000}
			ev.Record = &r
		}, want.Add(4 * time.Second), ""},
		{"a heartbeat newer than the observers' last answers counts", func(_ *config.Health, ev *SilenceEvidence) {
			r := *rec
			r.Time = t0.Add(10 * time.Second)
			ev.Record = &r
		}, want.Add(7 * time.Second), ""},
		{"an observer out of this partition may still reach it: unproven", func(_ *config.Health, ev *SilenceEvidence) {
			ev.Online = map[string]bool{"ctl1": true}
		}, time.Time{}, "observer ctl2 is not online in this partition"},
		{"a loss without its time proves no silence", func(_ *config.Health, ev *SilenceEvidence) {
			ev.Views["mgmt"]["ctl2"] = "cmp1=lost"
		}, time.Time{}, "observer ctl2 sees cmp1 lost on network mgmt but does not say since when"},
		{"an online observer without a view leaves it unproven", func(_ *config.Health, ev *SilenceEvidence) {
			delete(ev.Views["mgmt"], "ctl2")
		}, time.Time{}, "observer ctl2 publishes no view of network mgmt"},
		{"an observer still reaching it on one network leaves it unproven", func(_ *config.Health, ev *SilenceEvidence) {
			ev.Views["storage"] = map[string]string{"ctl1": "cmp1=ok"}
		}, time.Time{}, "observer ctl1 still reaches cmp1 on network storage"},
		{"an observer that cannot tell leaves it unproven", func(_ *config.Health, ev *SilenceEvidence) {
			ev.Views["mgmt"] = map[string]string{"ctl1": "cmp1=unknown", "ctl2": "cmp1=lost"}
		}, time.Time{}, "observer ctl1 cannot tell"},
		{"a non-observer's view does not count", func(_ *config.Health, ev *SilenceEvidence) {
			ev.Views = map[string]map[string]string{"mgmt": {"cmp2": "cmp1=lost" + ms(0)}}
			ev.Online = map[string]bool{"cmp2": true}
		}, time.Time{}, "observer ctl1 is not online"},
		{"no observer on the host's networks: nothing proven", func(cfg *config.Health, ev *SilenceEvidence) {
			cfg.Watchdog.Observers = []string{"cmp2"}
			ev.Views = map[string]map[string]string{"mgmt": {"cmp2": "cmp1=lost" + ms(0)}}
			ev.Online = map[string]bool{"cmp2": true}
			cfg.Hosts["cmp2"] = map[string]string{}
		}, time.Time{}, "no observer ([cmp2]) has a view of cmp1"},
		{"a host that joined by gossip is on the networks its record announces, within their subnets", func(cfg *config.Health, ev *SilenceEvidence) {
			delete(cfg.Hosts, "cmp1")
			cfg.Networks[0].Subnet, cfg.Networks[1].Subnet = "10.0.0.0/24", "10.1.0.0/24"
			r := *rec
			r.Addresses = map[string]string{"mgmt": "10.0.0.21", "storage": "10.1.0.21"}
			ev.Record = &r
		}, want, ""},
		{"a host that joined is not on a network whose address is out of the subnet: an observer there is not asked", func(cfg *config.Health, ev *SilenceEvidence) {
			delete(cfg.Hosts, "cmp1")
			cfg.Networks[0].Subnet, cfg.Networks[1].Subnet = "10.0.0.0/24", "10.1.0.0/24"
			r := *rec
			r.Addresses = map[string]string{"mgmt": "10.0.0.21", "storage": "10.7.0.21"}
			ev.Record = &r
			ev.Views["storage"] = map[string]string{"ctl1": "cmp1=ok"}
		}, want, ""},
		{"a host that joined and whose record announces no address is on no network: nothing proven", func(cfg *config.Health, ev *SilenceEvidence) {
			delete(cfg.Hosts, "cmp1")
			cfg.Networks[0].Subnet = "10.0.0.0/24"
		}, time.Time{}, "no observer ([ctl1 ctl2]) has a view of cmp1"},
		{"no record: no known watchdog", func(_ *config.Health, ev *SilenceEvidence) { ev.Record = nil }, time.Time{}, "has no heartbeat record"},
		{"a record without a watchdog", func(_ *config.Health, ev *SilenceEvidence) {
			r := *rec
			r.Watchdog = nil
			ev.Record = &r
		}, time.Time{}, "announces no watchdog"},
		{"storage unreadable", func(_ *config.Health, ev *SilenceEvidence) { ev.StorageErr = errors.New("EIO") }, time.Time{}, "cannot be read"},
		{"a torn view", func(_ *config.Health, ev *SilenceEvidence) {
			ev.Views["mgmt"]["ctl2"] = "cmp1=lost@x"
		}, time.Time{}, "observer ctl2's view of network mgmt cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := silenceConfig()
			views := map[string]map[string]string{}
			for n, m := range allLost {
				views[n] = map[string]string{}
				for k, v := range m {
					views[n][k] = v
				}
			}
			ev := SilenceEvidence{Record: rec, Views: views, Online: map[string]bool{}}
			for k, v := range online {
				ev.Online[k] = v
			}
			tt.mod(cfg, &ev)
			got, missing := SilentUntil(cfg, "cmp1", ev)
			if !got.Equal(tt.want) || !strings.Contains(missing, tt.missing) || (tt.missing == "") != (missing == "") {
				t.Fatalf("SilentUntil = %s, %q; want %s, %q", got, missing, tt.want, tt.missing)
			}
		})
	}
}

func TestParsePill(t *testing.T) {
	p := Pill{Host: "cmp1", ID: NewPillID(), By: "ctl1", Time: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	b, err := MarshalPill(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePill(b)
	if err != nil || got != p {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if len(p.ID) != 16 || NewPillID() == p.ID {
		t.Errorf("pill IDs: %q, not fresh and 16 hex digits", p.ID)
	}
	for _, bad := range []string{
		"", "{}", `{"host":"cmp1","id":"x"}`, `{"host":"cmp1","id":"x","time":"2026-12-06T10:00:00Z","extra":1}`,
		`{"host":"cmp1","id":"x","time":"2026-12-06T10:00:00Z"} {}`, `{"host":"cmp1","id":"x","ti`,
	} {
		if _, err := ParsePill([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
