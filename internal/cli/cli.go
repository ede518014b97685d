// Package cli is the front of the computeha multi-call binary. Started
// under an agent's name (fence_ipmi, fence_libvirt, ... through the
// symlinks packages install where Pacemaker looks for agents) it runs that
// agent; started as computeha it runs a subcommand:
//
//	computeha fence-ipmi [options]     run fence_ipmi (same for every agent)
//	computeha agents                   list the agents as KIND NAME lines
//	computeha manpage NAME             an agent's or computeha's generated man page
//	computeha metadata write|check DIR generated metadata of every agent
//	computeha version
//
// Main returns the process exit code; each agent runtime decides its own
// codes, and subcommands exit 0 on success, 1 on error and 2 on a command
// line they refuse (an unknown flag, a flag without its value).
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/fence"
)

// Version is set at build time (-ldflags "-X ...cli.Version=...").
var Version = "dev"

// IO is the process's standard streams.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// StartedAsAgent tells whether args, a process's arguments, start an agent
// by its name: the short processes Pacemaker runs for every operation.
func StartedAsAgent(args []string) bool {
	if len(args) == 0 {
		return false
	}
	_, ok := lookup(args[0])
	return ok
}

// Main dispatches on the name the binary was started as, then on the
// subcommand.
func Main(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 {
		args = []string{"computeha"}
	}
	if e, ok := lookup(args[0]); ok {
		return e.Run(ctx, args[1:], stdio)
	}
	return runCommand(ctx, args, stdio)
}

func runFence(ctx context.Context, a *fence.Agent, args []string, stdio IO) int {
	return fence.Main(ctx, a, fence.Env{
		Args: args, Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr, Version: Version,
	})
}

// exitCode carries an agent's exit code out of the command tree.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func runCommand(ctx context.Context, args []string, stdio IO) int {
	root := &ucli.Command{
		Name:      "computeha",
		Usage:     "high availability for OpenStack compute hosts and their VMs",
		Version:   Version,
		Reader:    stdio.Stdin,
		Writer:    stdio.Stdout,
		ErrWriter: stdio.Stderr,
		// Errors are printed once, below, not by the library.
		ExitErrHandler: func(context.Context, *ucli.Command, error) {},
		Commands: append(append(entryCommands(stdio), daemonCommands()...),
			hostcheckCommand(), instancemonCommand(), signalCommand(), healthCommand(), agentsCommand(), metadataCommand(), manpageCommand(), versionCommand()),
	}
	onUsageErrors(root)
	err := root.Run(ctx, append([]string{"computeha"}, args[1:]...))
	var code exitCode
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		fmt.Fprintln(stdio.Stderr, err) // it starts with the command's full name
		return 2
	default:
		fmt.Fprintf(stdio.Stderr, "computeha: %v\n", err)
		return 1
	}
}

// usageError is a command line the parser refused (an unknown flag, a bad flag value): exit
// status 2, as for any Unix tool, with one line on stderr and no help on stdout.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// onUsageErrors makes every command of the tree report a usage error as a usageError.
func onUsageErrors(c *ucli.Command) {
	c.OnUsageError = func(_ context.Context, c *ucli.Command, err error, _ bool) error {
		return usageError{fmt.Errorf("%s: %w (see %s --help)", c.FullName(), err, c.FullName())}
	}
	if len(c.Commands) > 0 && c.Action == nil {
		// A command that only groups others: an unknown one after it is a usage error, and
		// nothing after it shows the help.
		c.Action = func(_ context.Context, c *ucli.Command) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("%s: unknown command %q (see %s --help)", c.FullName(), c.Args().First(), c.FullName())}
			}
			return ucli.ShowSubcommandHelp(c)
		}
	}
	for _, sub := range c.Commands {
		onUsageErrors(sub)
	}
}

// entryCommands exposes every program as a subcommand (fence_ipmi as
// "fence-ipmi", the OCF agent nova-compute as "ocf-nova-compute"), its
// arguments passed through untouched to the program's own parser.
func entryCommands(stdio IO) []*ucli.Command {
	var cmds []*ucli.Command
	for _, e := range Entries() {
		name := strings.ReplaceAll(e.Name, "_", "-")
		if e.Kind == KindOCF {
			name = "ocf-" + name
		}
		cmds = append(cmds, &ucli.Command{
			Name:            name,
			Usage:           "run the " + e.Kind + " agent " + e.Name,
			SkipFlagParsing: true,
			HideHelp:        true,
			Action: func(ctx context.Context, c *ucli.Command) error {
				if code := e.Run(ctx, c.Args().Slice(), stdio); code != 0 {
					return exitCode(code)
				}
				return nil
			},
		})
	}
	return cmds
}

// agentsCommand lists the programs the binary serves as "KIND NAME" lines
// (fence, ocf, alert), for build and packaging scripts that create the
// symlinks.
func agentsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "agents",
		Usage: "list the agents this binary serves as KIND NAME lines (the names to symlink it as)",
		Action: func(_ context.Context, c *ucli.Command) error {
			for _, e := range Entries() {
				if _, err := fmt.Fprintln(c.Root().Writer, e.Kind, e.Name); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// manpageCommand prints the generated man page of an agent, from the same
// parameter definitions as its metadata.
func manpageCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "manpage",
		Usage:     "print the man page of an agent, or of computeha itself (roff)",
		ArgsUsage: "NAME",
		Action: func(_ context.Context, c *ucli.Command) error {
			name, err := oneArg(c)
			if err != nil {
				return err
			}
			if name == c.Root().Name {
				return writeCommandManpage(c.Root().Writer, c.Root())
			}
			for _, e := range Entries() {
				if e.Name == name && e.Manpage != nil {
					return e.Manpage(c.Root().Writer)
				}
			}
			return fmt.Errorf("no agent called %q has a man page", name)
		},
	}
}

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(_ context.Context, c *ucli.Command) error {
			_, err := fmt.Fprintf(c.Root().Writer, "computeha %s\n", Version)
			return err
		},
	}
}

func metadataCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "metadata",
		Usage: "generated metadata XML of every agent",
		Commands: []*ucli.Command{
			{
				Name:      "write",
				Usage:     "write every agent's metadata into DIR",
				ArgsUsage: "DIR",
				Action: func(_ context.Context, c *ucli.Command) error {
					dir, err := oneArg(c)
					if err != nil {
						return err
					}
					return WriteMetadata(dir)
				},
			},
			{
				Name:      "check",
				Usage:     "fail if DIR differs from freshly generated metadata",
				ArgsUsage: "DIR",
				Action: func(_ context.Context, c *ucli.Command) error {
					dir, err := oneArg(c)
					if err != nil {
						return err
					}
					return CheckMetadata(dir)
				},
			},
		},
	}
}

func oneArg(c *ucli.Command) (string, error) {
	if c.Args().Len() != 1 {
		return "", argsError(c, "needs exactly one argument: %s", c.ArgsUsage)
	}
	return c.Args().First(), nil
}

// argsError is a usage error about c's arguments (too many, too few): exit status 2, like a
// flag the parser refused.
func argsError(c *ucli.Command, format string, a ...any) error {
	return usageError{fmt.Errorf("%s %s (see %s --help)", c.FullName(), fmt.Sprintf(format, a...), c.FullName())}
}

// Metadata renders the metadata of every agent, by file name.
func Metadata() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, e := range Entries() {
		if e.Metadata == nil {
			continue
		}
		var b bytes.Buffer
		if err := e.Metadata(&b); err != nil {
			return nil, err
		}
		out[e.Name+".xml"] = b.Bytes()
	}
	return out, nil
}

// WriteMetadata regenerates dir: every agent's file, and no stale ones.
func WriteMetadata(dir string) error {
	files, err := Metadata()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for _, f := range old {
		if _, keep := files[filepath.Base(f)]; !keep {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CheckMetadata reports every file of dir that is missing, stale or extra.
func CheckMetadata(dir string) error {
	files, err := Metadata()
	if err != nil {
		return err
	}
	var problems []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case err != nil:
			problems = append(problems, name+": missing")
		case !bytes.Equal(got, want):
			problems = append(problems, name+": differs from the generated metadata")
		}
	}
	present, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for _, f := range present {
		if _, ok := files[filepath.Base(f)]; !ok {
			problems = append(problems, filepath.Base(f)+": no agent generates it")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("metadata in %s is out of date (run make metadata):\n  %s", dir, strings.Join(problems, "\n  "))
	}
	return nil
}
