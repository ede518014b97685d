package crm

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
)

// AlertConfig is the <alert> computeha registers in the CIB.
type AlertConfig struct {
	ID string
	// Path is the alert agent (the computeha binary's computeha_alert name).
	Path string
	// Recipient is the watcher's socket, passed to the agent.
	Recipient string
	// Timeout bounds each run of the agent (the agent itself returns in
	// well under a second).
	Timeout string
}

func (a AlertConfig) xml() (string, error) {
	type nv struct {
		ID    string `xml:"id,attr"`
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	type doc struct {
		XMLName xml.Name `xml:"alert"`
		ID      string   `xml:"id,attr"`
		Path    string   `xml:"path,attr"`
		Meta    struct {
			ID      string `xml:"id,attr"`
			NVPairs []nv   `xml:"nvpair"`
		} `xml:"meta_attributes"`
		Select struct {
			Nodes      struct{} `xml:"select_nodes"`
			Fencing    struct{} `xml:"select_fencing"`
			Attributes struct{} `xml:"select_attributes"`
		} `xml:"select"`
		Recipient struct {
			ID    string `xml:"id,attr"`
			Value string `xml:"value,attr"`
		} `xml:"recipient"`
	}
	d := doc{ID: a.ID, Path: a.Path}
	d.Meta.ID = a.ID + "-meta"
	timeout := a.Timeout
	if timeout == "" {
		timeout = "5s"
	}
	d.Meta.NVPairs = []nv{{ID: a.ID + "-meta-timeout", Name: "timeout", Value: timeout}}
	d.Recipient.ID = a.ID + "-recipient"
	d.Recipient.Value = a.Recipient
	b, err := xml.Marshal(d)
	return string(b), err
}

// matches tells whether the CIB already holds this alert as configured.
func (a AlertConfig) matches(al Alert) bool {
	sel := slices.Clone(al.Select)
	slices.Sort(sel)
	timeout := a.Timeout
	if timeout == "" {
		timeout = "5s"
	}
	return al.Path == a.Path && slices.Equal(al.Recipients, []string{a.Recipient}) &&
		slices.Equal(sel, []string{"attributes", "fencing", "nodes"}) && len(al.SelectedAttributes) == 0 &&
		al.Meta["timeout"] == timeout
}

// EnsureAlert registers the alert (node, fencing and attribute kinds), or
// replaces an outdated registration with the same ID. pcs cannot set an
// alert's <select>, so the CIB is edited with cibadmin.
func (c *Client) EnsureAlert(ctx context.Context, a AlertConfig) error {
	cib, err := c.CIB(ctx)
	if err != nil {
		return err
	}
	body, err := a.xml()
	if err != nil {
		return err
	}
	haveSection := false
	for _, al := range cib.Alerts {
		haveSection = true
		if al.ID != a.ID {
			continue
		}
		if a.matches(al) {
			return nil
		}
		if _, err := c.Runner.Run(ctx, "cibadmin", "--delete", "--scope", "alerts", "--xml-text", fmt.Sprintf(`<alert id=%q/>`, a.ID)); err != nil {
			return fmt.Errorf("replace alert %s: %w", a.ID, err)
		}
	}
	if !haveSection {
		// An empty <alerts/> may exist; creating inside it works either way
		// once the section is there.
		if _, err := c.Runner.Run(ctx, "cibadmin", "--create", "--scope", "configuration", "--xml-text", "<alerts>"+body+"</alerts>"); err == nil {
			return nil
		}
	}
	if _, err := c.Runner.Run(ctx, "cibadmin", "--create", "--scope", "alerts", "--xml-text", body); err != nil {
		return fmt.Errorf("register alert %s: %w", a.ID, err)
	}
	return nil
}
