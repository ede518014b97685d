package lab

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNodes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Node
		wantErr bool
	}{
		{
			name: "a running controller and a compute whose namespaces are gone are both listed",
			in: "ctl1 controller 192.168.1.11 192.168.2.11 192.168.3.11 192.168.5.11:6011 7067\n" +
				"cmp1 compute 192.168.1.101 192.168.2.101 192.168.3.101 192.168.5.101:6101 -\n",
			want: []Node{
				{Name: "ctl1", Kind: Controller, Mgmt: "192.168.1.11", Storage: "192.168.2.11", Tenant: "192.168.3.11", BMC: "192.168.5.11:6011", HolderPID: 7067},
				{Name: "cmp1", Kind: Compute, Mgmt: "192.168.1.101", Storage: "192.168.2.101", Tenant: "192.168.3.101", BMC: "192.168.5.101:6101"},
			},
		},
		{name: "no output means no nodes", in: "", want: nil},
		{name: "a line with a missing field is an error", in: "ctl1 controller 192.168.1.11\n", wantErr: true},
		{name: "a holder pid that is not a number is an error", in: "ctl1 controller a b c d:1 x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNodes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseNodes error = %v, want error %t", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseNodes (-want +got):\n%s", diff)
			}
		})
	}
}

// testdata/crm_mon-settled.xml is crm_mon --output-as=xml of a settled lab
// of 3 controllers and 3 computes (Pacemaker 2.1.5).
func TestDecodeStateOfASettledLab(t *testing.T) {
	f, err := os.Open("testdata/crm_mon-settled.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := DecodeState(f)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Summary.CurrentDC.Present {
		t.Error("no DC decoded")
	}
	type node struct {
		Name, Type            string
		Online, Unclean, Pend bool
	}
	var nodes []node
	for _, n := range st.Nodes {
		nodes = append(nodes, node{n.Name, n.Type, n.Online, n.Unclean, n.Pending})
	}
	wantNodes := []node{
		{"cmp1", "remote", true, false, false},
		{"cmp2", "remote", true, false, false},
		{"cmp3", "remote", true, false, false},
		{"ctl1", "member", true, false, false},
		{"ctl2", "member", true, false, false},
		{"ctl3", "member", true, false, false},
	}
	if diff := cmp.Diff(wantNodes, nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	r, ok := st.Resource("cmp2")
	if !ok || r.Agent != "ocf:pacemaker:remote" || r.Role != "Started" || !r.Active || r.Failed || len(r.Nodes) != 1 {
		t.Errorf("connection resource of cmp2: %+v (found %t)", r, ok)
	}
	if d, ok := st.Resource("fence-ctl1"); !ok || d.Agent != "stonith:fence_ipmi" || len(d.Nodes) != 1 || d.Nodes[0].Name == "ctl1" {
		t.Errorf("fence-ctl1: %+v (found %t), want started on another controller", d, ok)
	}
	if _, ok := st.Node("ctl9"); ok {
		t.Error("a node that is not in the cluster was found")
	}
}
