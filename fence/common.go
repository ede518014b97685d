package fence

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Common holds the options every agent takes. Agents embed it in
// their parameter struct (after their own fields: the metadata lists
// parameters in struct order, the action first).
type Common struct {
	Action       string        `fence:"action" short:"o" metavar:"action" required:"true" help:"Fencing action"`
	Verbose      bool          `fence:"verbose" short:"v" help:"Verbose mode: log what the agent does to standard error"`
	DebugFile    string        `fence:"debug_file" old:"debug" short:"D" metavar:"debugfile" help:"Write debug information to given file"`
	Delay        time.Duration `fence:"delay" metavar:"seconds" default:"0" help:"Wait X seconds before fencing is started"`
	LoginTimeout time.Duration `fence:"login_timeout" metavar:"seconds" default:"5" help:"Wait X seconds for the device to accept a login"`
	PowerTimeout time.Duration `fence:"power_timeout" metavar:"seconds" default:"20" help:"Test X seconds for status change after ON/OFF"`
	PowerWait    time.Duration `fence:"power_wait" metavar:"seconds" default:"0" help:"Wait X seconds after issuing ON/OFF"`
	ShellTimeout time.Duration `fence:"shell_timeout" metavar:"seconds" default:"3" help:"Wait X seconds for the device to answer one command"`
	RetryOn      int           `fence:"retry_on" metavar:"attempts" default:"1" help:"Count of attempts to retry power on"`

	// Nodename is the Pacemaker node being fenced, when the fencer said
	// (stdin "nodename="); agents that only act on the plug ignore it.
	Nodename string
}

func (c *Common) common() *Common { return c }

// Target is the host being fenced: the node the fencer named (nodename=), or else plug.
func (c *Common) Target(plug string) string {
	if c.Nodename != "" {
		return c.Nodename
	}
	return plug
}

// Params is an agent's parameter struct: it embeds Common.
type Params interface{ common() *Common }

// Credentials are the login options of agents that log in to a device.
// Embed it in the parameter struct; the runtime resolves password_script.
type Credentials struct {
	Username       string `fence:"username" old:"login" short:"l" metavar:"name" help:"Login name"`
	Password       string `fence:"password" old:"passwd" short:"p" metavar:"password" secret:"true" help:"Login password or passphrase"`
	PasswordScript string `fence:"password_script" old:"passwd_script" short:"S" metavar:"script" help:"Script to run to retrieve password"`
}

func (c *Credentials) credentials() *Credentials { return c }

type hasCredentials interface{ credentials() *Credentials }

// CredentialsOptional is a parameter struct whose password may be absent
// (fence_nova with a clouds.yaml, which carries the credentials itself).
type CredentialsOptional interface{ CredentialsOptional() bool }

// resolvePassword runs password_script, if given, and keeps the first line
// it prints as the password. The script means what it would mean to
// /bin/sh, as with fence-agents; a plain command line (no quotes, no shell
// syntax) is run directly, which saves a shell start on every fencing
// call. The password itself is never in any argv.
func (c *Credentials) resolvePassword(ctx context.Context, timeout time.Duration, required bool) error {
	if c.PasswordScript == "" {
		if c.Password == "" && required {
			return usagef("Failed: You have to enter password or password script")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := scriptCommand(ctx, c.PasswordScript)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		// The script's stderr is not repeated: a failing script may have
		// printed the secret it was about to return.
		return fmt.Errorf("password script failed: %w", err)
	}
	pw, _, _ := strings.Cut(out.String(), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return fmt.Errorf("password script printed no password")
	}
	c.Password = pw
	return nil
}

// plainWord matches what a shell passes on unchanged: no quoting,
// expansion, globbing, redirection or separators.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./:@%+,=-]+$`)

// scriptCommand runs script directly when the shell would only split it on
// blanks, and through /bin/sh otherwise.
func scriptCommand(ctx context.Context, script string) *exec.Cmd {
	words := strings.Fields(script)
	plain := len(words) > 0 && !strings.Contains(words[0], "=")
	for _, w := range words {
		plain = plain && plainWord.MatchString(w)
	}
	if plain {
		return exec.CommandContext(ctx, words[0], words[1:]...)
	}
	return exec.CommandContext(ctx, "/bin/sh", "-c", script)
}
