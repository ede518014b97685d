// Command computeha is the multi-call binary of computeha: every fence
// agent, OCF agent and command, chosen by the name it is started as.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/computeha/computeha/internal/cli"
	"github.com/computeha/computeha/internal/procs"
)

func main() {
	// An agent keeps the single scheduler P it started with; anything else
	// may run long and gets the runtime's sizing.
	if !cli.StartedAsAgent(os.Args) {
		procs.Default()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
