package health

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
)

func TestADecisionsSummaryAndDetailsSayWhatItWasDecidedOn(t *testing.T) {
	d := Decision{Host: "cmp1", State: Isolated, Response: config.ResponseMigrate, Networks: []string{"tenant"}}
	ev := Evidence{Membership: OK, Networks: map[string]Signal{"mgmt": OK, "tenant": Lost}, Storage: OK, Service: Lost, ServiceDownFor: 3 * time.Second}
	if got, want := d.Summary(), "cmp1 is "+string(Isolated)+": migrate"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if got := (Decision{Host: "cmp2", State: Dead, Response: config.ResponseFence}).Summary(); got != "cmp2 is dead: fence (Pacemaker fences it)" {
		t.Errorf("a dead host's summary %q: it must say Pacemaker fences it", got)
	}
	b, err := json.Marshal(d.Details(Running, ev))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"evidence":{"membership":"ok","networks":{"mgmt":"ok","tenant":"lost"},"service":"lost","service_down_for":"3s","storage":"ok"},` +
		`"lost_networks":["tenant"],"previous_state":"running","response":"migrate","state":"` + string(Isolated) + `"}`
	if string(b) != want {
		t.Errorf("details\n%s\nwant\n%s", b, want)
	}
	if _, ok := (Decision{State: Running}).Details(Dead, Evidence{})["lost_networks"]; ok {
		t.Error("a decision that lost no network lists lost_networks")
	}
}
