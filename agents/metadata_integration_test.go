//go:build integration

package agents

import (
	"bytes"
	"os/exec"
	"testing"
)

// raAPIDir holds resource-agents' ra-api-1.dtd, which the meta-data's
// DOCTYPE names relative to it (as ocf-tester validates).
const raAPIDir = "/usr/share/resource-agents"

func TestMetadataIsValidAgainstTheResourceAgentsDTD(t *testing.T) {
	a := (&testAgent{}).agent()
	a.Sample = (*promotable)(nil)
	var b bytes.Buffer
	if err := a.WriteMetadata(&b); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("xmllint", "--noout", "--valid", "-")
	cmd.Dir = raAPIDir
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("xmllint --valid: %v\n%s", err, out)
	}
}
