package health

import "fmt"

// Summary is the history's line for d, newly confirmed.
func (d Decision) Summary() string {
	s := fmt.Sprintf("%s is %s: %s", d.Host, d.State, d.Response)
	if d.State == Dead {
		s += " (Pacemaker fences it)"
	}
	return s
}

// Details is what the history keeps of d, newly confirmed after prev: its state and response,
// the state before, the evidence it was decided on, and the networks it found lost.
func (d Decision) Details(prev State, ev Evidence) map[string]any {
	nets := map[string]string{}
	for n, s := range ev.Networks {
		nets[n] = s.String()
	}
	details := map[string]any{
		"state": d.State, "response": d.Response, "previous_state": prev,
		"evidence": map[string]any{
			"membership": ev.Membership.String(), "networks": nets, "storage": ev.Storage.String(),
			"service": ev.Service.String(), "service_down_for": ev.ServiceDownFor.String(),
		},
	}
	if len(d.Networks) > 0 {
		details["lost_networks"] = d.Networks
	}
	return details
}
