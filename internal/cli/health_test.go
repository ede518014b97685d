package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
)

func TestHealthJudgesTheListedHostsAndThoseThatJoined(t *testing.T) {
	cfg := config.DefaultHealth()
	cfg.Hosts = map[string]map[string]string{"ctl1": {"mgmt": "192.0.2.1"}, "cmp1": {"mgmt": "192.0.2.11"}}
	obs := health.Observations{Records: map[string]health.Record{"cmp3": {Host: "cmp3"}}}
	tests := []struct {
		only    []string
		want    []string
		wantErr string
	}{
		{nil, []string{"cmp1", "cmp3", "ctl1"}, ""},
		{[]string{}, []string{"cmp1", "cmp3", "ctl1"}, ""}, // what the flag gives when not set
		{[]string{"cmp3"}, []string{"cmp3"}, ""},
		{[]string{"cmp1", "cmp9"}, nil, `host "cmp9" is not in health.hosts and never joined`},
	}
	for _, tt := range tests {
		got, err := judgedHosts(&cfg, obs, tt.only)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("only %v: err %v, want %q", tt.only, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("only %v: %v, %v; want %v", tt.only, got, err, tt.want)
		}
	}
}
