package crm

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
)

// Version orders CIB contents: any change raises it.
type Version struct {
	AdminEpoch, Epoch, NumUpdates int
}

// Less tells whether v is older than w.
func (v Version) Less(w Version) bool {
	if v.AdminEpoch != w.AdminEpoch {
		return v.AdminEpoch < w.AdminEpoch
	}
	if v.Epoch != w.Epoch {
		return v.Epoch < w.Epoch
	}
	return v.NumUpdates < w.NumUpdates
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.AdminEpoch, v.Epoch, v.NumUpdates) }

// CIB is the part of the Cluster Information Base computeha reads.
type CIB struct {
	Version    Version
	HaveQuorum bool
	DCUUID     string
	// Properties are the cluster options (crm_config), by name.
	Properties map[string]string
	Nodes      []CIBNode
	Resources  []CIBResource
	Alerts     []Alert
	NodeStates []NodeState
}

// CIBNode is a node of the configuration section with its permanent
// attributes.
type CIBNode struct {
	ID         string
	Name       string
	Type       NodeType
	Attributes map[string]string
}

// CIBResource is a configured primitive (clone and group members
// flattened, Parent naming the container).
type CIBResource struct {
	ID       string
	Parent   string
	Class    string
	Provider string
	Type     string
	Params   map[string]string
	Meta     map[string]string
}

// Alert is one entry of the alerts section.
type Alert struct {
	ID         string
	Path       string
	Recipients []string
	// Select lists the alert kinds selected (nodes, fencing, attributes,
	// resources); empty means every kind but attributes.
	Select []string
	// SelectedAttributes lists the attributes selected, when restricted.
	SelectedAttributes []string
	Meta               map[string]string
}

// NodeState is a node's entry of the status section.
type NodeState struct {
	ID       string
	Name     string
	InCCM    bool // member of the corosync membership
	Crmd     bool // its controller is online
	Join     string
	Expected string
	Remote   bool
	// Transient are the node's transient attributes.
	Transient map[string]string
}

// NodeState returns the status entry of the node called name.
func (c *CIB) NodeState(name string) (NodeState, bool) {
	for _, n := range c.NodeStates {
		if n.Name == name {
			return n, true
		}
	}
	return NodeState{}, false
}

// Node returns the configured node called name.
func (c *CIB) Node(name string) (CIBNode, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return CIBNode{}, false
}

type xmlNVSet struct {
	NVPairs []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"nvpair"`
}

func (s xmlNVSet) into(m map[string]string) {
	for _, p := range s.NVPairs {
		if _, seen := m[p.Name]; !seen {
			m[p.Name] = p.Value
		}
	}
}

type xmlCIB struct {
	XMLName    xml.Name `xml:"cib"`
	AdminEpoch *string  `xml:"admin_epoch,attr"`
	Epoch      *string  `xml:"epoch,attr"`
	NumUpdates *string  `xml:"num_updates,attr"`
	HaveQuorum string   `xml:"have-quorum,attr"`
	DCUUID     string   `xml:"dc-uuid,attr"`
	Config     struct {
		CrmConfig []xmlNVSet `xml:"crm_config>cluster_property_set"`
		Nodes     []struct {
			ID    string     `xml:"id,attr"`
			Uname string     `xml:"uname,attr"`
			Type  string     `xml:"type,attr"`
			Attrs []xmlNVSet `xml:"instance_attributes"`
		} `xml:"nodes>node"`
		Resources xmlCIBResources `xml:"resources"`
		Alerts    []struct {
			ID         string     `xml:"id,attr"`
			Path       string     `xml:"path,attr"`
			Meta       []xmlNVSet `xml:"meta_attributes"`
			Recipients []struct {
				Value string `xml:"value,attr"`
			} `xml:"recipient"`
			Select *struct {
				Nodes      *struct{} `xml:"select_nodes"`
				Fencing    *struct{} `xml:"select_fencing"`
				Resources  *struct{} `xml:"select_resources"`
				Attributes *struct {
					Attrs []struct {
						Name string `xml:"name,attr"`
					} `xml:"attribute"`
				} `xml:"select_attributes"`
			} `xml:"select"`
		} `xml:"alerts>alert"`
	} `xml:"configuration"`
	Status []struct {
		ID        string     `xml:"id,attr"`
		Uname     string     `xml:"uname,attr"`
		InCCM     string     `xml:"in_ccm,attr"`
		Crmd      string     `xml:"crmd,attr"`
		Join      string     `xml:"join,attr"`
		Expected  string     `xml:"expected,attr"`
		Remote    string     `xml:"remote_node,attr"`
		Transient []xmlNVSet `xml:"transient_attributes>instance_attributes"`
	} `xml:"status>node_state"`
}

type xmlCIBResources struct {
	Primitives []xmlPrimitive `xml:"primitive"`
	Clones     []xmlContainer `xml:"clone"`
	Groups     []xmlContainer `xml:"group"`
}

type xmlContainer struct {
	ID string `xml:"id,attr"`
	xmlCIBResources
}

type xmlPrimitive struct {
	ID       string     `xml:"id,attr"`
	Class    string     `xml:"class,attr"`
	Provider string     `xml:"provider,attr"`
	Type     string     `xml:"type,attr"`
	Params   []xmlNVSet `xml:"instance_attributes"`
	Meta     []xmlNVSet `xml:"meta_attributes"`
}

// presence reads in_ccm and crmd: "true"/"online" in Pacemaker 2.1,
// a timestamp of when the node joined in later releases, "false"/"offline"
// or "0" when absent.
func presence(s string) bool {
	switch s {
	case "", "false", "offline", "0", "no":
		return false
	}
	return true
}

// DecodeCIB decodes the output of cibadmin --query.
func DecodeCIB(r io.Reader) (*CIB, error) {
	var x xmlCIB
	if err := xml.NewDecoder(r).Decode(&x); err != nil {
		return nil, fmt.Errorf("decode CIB: %w", err)
	}
	// A version attribute that is absent counts as 0, as DecodeVersion reads it; one that is
	// present must be a number, empty included.
	var v Version
	for _, f := range []struct {
		name string
		s    *string
		dst  *int
	}{{"admin_epoch", x.AdminEpoch, &v.AdminEpoch}, {"epoch", x.Epoch, &v.Epoch}, {"num_updates", x.NumUpdates, &v.NumUpdates}} {
		if f.s == nil {
			continue
		}
		n, err := strconv.Atoi(*f.s)
		if err != nil {
			return nil, fmt.Errorf("decode CIB: %s=%q is not a number", f.name, *f.s)
		}
		*f.dst = n
	}
	c := &CIB{Version: v, HaveQuorum: truthy(x.HaveQuorum), DCUUID: x.DCUUID, Properties: map[string]string{}}
	for _, set := range x.Config.CrmConfig {
		set.into(c.Properties)
	}
	for _, n := range x.Config.Nodes {
		cn := CIBNode{ID: n.ID, Name: n.Uname, Type: NodeType(n.Type), Attributes: map[string]string{}}
		if cn.Type == "" {
			cn.Type = NodeMember
		}
		for _, set := range n.Attrs {
			set.into(cn.Attributes)
		}
		c.Nodes = append(c.Nodes, cn)
	}
	c.Resources = flattenPrimitives(x.Config.Resources, "")
	for _, a := range x.Config.Alerts {
		al := Alert{ID: a.ID, Path: a.Path, Meta: map[string]string{}}
		for _, set := range a.Meta {
			set.into(al.Meta)
		}
		for _, rcp := range a.Recipients {
			al.Recipients = append(al.Recipients, rcp.Value)
		}
		if s := a.Select; s != nil {
			if s.Nodes != nil {
				al.Select = append(al.Select, "nodes")
			}
			if s.Fencing != nil {
				al.Select = append(al.Select, "fencing")
			}
			if s.Resources != nil {
				al.Select = append(al.Select, "resources")
			}
			if s.Attributes != nil {
				al.Select = append(al.Select, "attributes")
				for _, at := range s.Attributes.Attrs {
					al.SelectedAttributes = append(al.SelectedAttributes, at.Name)
				}
			}
		}
		c.Alerts = append(c.Alerts, al)
	}
	for _, ns := range x.Status {
		st := NodeState{
			ID: ns.ID, Name: ns.Uname, InCCM: presence(ns.InCCM), Crmd: presence(ns.Crmd),
			Join: ns.Join, Expected: ns.Expected, Remote: truthy(ns.Remote), Transient: map[string]string{},
		}
		for _, set := range ns.Transient {
			set.into(st.Transient)
		}
		c.NodeStates = append(c.NodeStates, st)
	}
	return c, nil
}

func flattenPrimitives(r xmlCIBResources, parent string) []CIBResource {
	var out []CIBResource
	for _, p := range r.Primitives {
		cr := CIBResource{
			ID: p.ID, Parent: parent, Class: p.Class, Provider: p.Provider, Type: p.Type,
			Params: map[string]string{}, Meta: map[string]string{},
		}
		for _, set := range p.Params {
			set.into(cr.Params)
		}
		for _, set := range p.Meta {
			set.into(cr.Meta)
		}
		out = append(out, cr)
	}
	for _, cs := range [][]xmlContainer{r.Clones, r.Groups} {
		for _, c := range cs {
			out = append(out, flattenPrimitives(c.xmlCIBResources, c.ID)...)
		}
	}
	return out
}

// DecodeVersion reads only the version of a CIB document (the root
// element's attributes), without decoding the rest: the cheap check of the
// poll path.
func DecodeVersion(r io.Reader) (Version, error) {
	dec := xml.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if err != nil {
			return Version{}, fmt.Errorf("decode CIB version: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != "cib" {
			return Version{}, fmt.Errorf("decode CIB version: root element is <%s>, not <cib>", se.Name.Local)
		}
		var v Version
		for _, a := range se.Attr {
			var dst *int
			switch a.Name.Local {
			case "admin_epoch":
				dst = &v.AdminEpoch
			case "epoch":
				dst = &v.Epoch
			case "num_updates":
				dst = &v.NumUpdates
			default:
				continue
			}
			n, err := strconv.Atoi(a.Value)
			if err != nil {
				return Version{}, fmt.Errorf("decode CIB version: %s=%q is not a number", a.Name.Local, a.Value)
			}
			*dst = n
		}
		return v, nil
	}
}
