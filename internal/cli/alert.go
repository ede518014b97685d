package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/computeha/computeha/crm"
)

// AlertAgentName is the name Pacemaker runs the alert agent as.
const AlertAgentName = "computeha_alert"

// alertEntries lists the Pacemaker alert agents.
func alertEntries() []Entry {
	return []Entry{{Kind: KindAlert, Name: AlertAgentName, Run: runAlertAgent}}
}

// runAlertAgent forwards one alert to the watcher. Pacemaker waits for
// alert agents, so it returns at once whatever happens; a failure is
// printed for Pacemaker's log and exits 1.
func runAlertAgent(_ context.Context, _ []string, stdio IO) int {
	rec, err := crm.AlertRecordFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(stdio.Stderr, "%s: %v\n", AlertAgentName, err)
		return 1
	}
	if _, err := crm.ForwardAlert(rec, rec.Recipient); err != nil {
		fmt.Fprintf(stdio.Stderr, "%s: %s alert for %s not delivered: %v\n", AlertAgentName, rec.Kind, rec.Node, err)
		return 1
	}
	return 0
}
