package agents

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMetadataFollowsTheParameterStruct(t *testing.T) {
	var b bytes.Buffer
	if err := (&testAgent{}).agent().WriteMetadata(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n") {
		t.Errorf("the meta-data does not start with the declaration and the DOCTYPE:\n%s", b.String())
	}
	var doc xmlAgent
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	en := func(s string) xmlDesc { return xmlDesc{Lang: "en", Text: s} }
	want := xmlAgent{
		XMLName: xml.Name{Local: "resource-agent"}, Name: "test-agent", Version: "1.0", APIVersion: "1.1",
		LongDesc: en("An agent for the runtime's tests."), ShortDesc: en("A test agent"),
		Parameters: []xmlParameter{
			{Name: "name", Unique: "0", Required: "1", LongDesc: en("a required name"), ShortDesc: en("a required name"), Content: xmlContent{Type: "string"}},
			{Name: "count", Unique: "0", Required: "0", LongDesc: en("a number"), ShortDesc: en("a number"), Content: xmlContent{Type: "integer", Default: "3"}},
			{Name: "enabled", Unique: "0", Required: "0", LongDesc: en("a switch"), ShortDesc: en("a switch"), Content: xmlContent{Type: "boolean", Default: "true"}},
			{Name: "wait", Unique: "0", Required: "0", LongDesc: en("a time"), ShortDesc: en("a time"), Content: xmlContent{Type: "time", Default: "5s"}},
		},
		Actions: []xmlAction{
			{Name: "start", Timeout: "40s"},
			{Name: "stop", Timeout: "40s"},
			{Name: "monitor", Timeout: "20s", Interval: "15s", Depth: "0"},
			{Name: "meta-data", Timeout: "5s"},
			{Name: "validate-all", Timeout: "5s"},
		},
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("meta-data (-want +got):\n%s", diff)
	}
}

type promotable struct{ testResource }

func (promotable) Promote(ctx context.Context) error { return nil }
func (promotable) Demote(ctx context.Context) error  { return nil }
func (promotable) Reload(ctx context.Context) error  { return nil }

func TestMetadataListsOptionalActionsFromTheDTD(t *testing.T) {
	a := (&testAgent{}).agent()
	a.Sample = (*promotable)(nil)
	got := a.actions(a.Sample)
	want := []string{"start", "stop", "monitor", "promote", "demote", "reload", "meta-data", "validate-all"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if !a.implements("reload-agent") {
		t.Error("a Reloader does not implement reload-agent")
	}
}

func TestSpecRejectsMalformedTags(t *testing.T) {
	for name, v := range map[string]any{
		"no help": &struct {
			A string `ocf:"a"`
		}{},
		"dash in a name": &struct {
			A string `ocf:"a-b" help:"x"`
		}{},
		"bad default": &struct {
			A int `ocf:"a" default:"x" help:"x"`
		}{},
		"duplicate": &struct {
			A string `ocf:"a" help:"x"`
			B string `ocf:"a" help:"x"`
		}{},
		"unsupported type": &struct {
			A float64 `ocf:"a" help:"x"`
		}{},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: SpecOf did not panic", name)
				}
			}()
			SpecOf(v)
		}()
	}
}

func TestManpageListsEveryParameterAndAction(t *testing.T) {
	var b strings.Builder
	a := (&testAgent{}).agent()
	if err := a.WriteManpage(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, ".TH OCF_COMPUTEHA_") {
		t.Errorf("header: %.40q", out)
	}
	for _, p := range a.Spec() {
		if !strings.Contains(out, ".B "+strings.ReplaceAll(p.Name, "-", `\-`)+"\n") {
			t.Errorf("parameter %s missing", p.Name)
		}
	}
	for _, act := range []string{"start", "stop", "monitor", `meta\-data`, `validate\-all`} {
		if !strings.Contains(out, ".B "+act+"\n") {
			t.Errorf("action %s missing", act)
		}
	}
}
