// Command fedctl is a command-line client for a fednode node.
//
//	fedctl register [--invite CODE] USERNAME (password read from standard input)
//	fedctl login USERNAME           (password from standard input; saves the token)
//	fedctl send TO CONTENT [TAG...]
//	fedctl send --e2e TO CONTENT [TAG...]  (end-to-end encrypted)
//	fedctl keys init [--backup] [--replace] | restore | show [ADDRESS]
//	fedctl keys trust ADDRESS --fingerprint FP
//	fedctl inbox [-after CURSOR] [-limit N]
//	fedctl tail [-after CURSOR]     (follows the live socket, reconnecting)
//	fedctl logout
//	fedctl admin federation [open|allowlist|reset] [-allow D,D] [-block D,D]
//	fedctl admin dead-letters [redrive|purge -id ID | -peer DOMAIN | -all]
//	fedctl admin retry-peer DOMAIN
//	fedctl admin rotate-keys sig|enc [OVERLAP]
//	fedctl admin revoke-sessions
//	fedctl admin bans | ban KEY [DURATION [REASON]] | unban KEY
//	fedctl admin rotate-jwt-secret
//	fedctl admin invites create [-n N] [-expires DURATION] | list | revoke CODE
//	fedctl admin users [-prefix P] [-q SUBSTRING] [-role admin|user] [-after NAME] [-limit N]
//	fedctl admin user NAME
//	fedctl admin suspend NAME [REASON] | unsuspend NAME
//	fedctl admin unlock NAME
//	fedctl admin grant-admin NAME | revoke-admin NAME
//	fedctl admin delete-user NAME -yes
//
// Where the node asks for a proof of work (after repeated failed logins or
// registrations), register and login solve it themselves.
//
// The node is FEDNODE_URL (default http://127.0.0.1:8080). The token comes
// from FEDNODE_TOKEN, or the file FEDCTL_TOKEN_FILE (default
// $HOME/.config/fednode/token), which login writes with mode 0600. A
// password is read from the terminal without echo, or as one line of
// standard input when that is not a terminal (scripts). The usage text
// (fedctl help) says the same; run adds help, version and hints.
//
// End-to-end encryption (keys.go): this device's private keys are in
// FEDCTL_E2E_KEYS and the keys it trusts in FEDCTL_KNOWN_KEYS (both mode
// 0600 under $HOME/.config/fednode by default); inbox and tail show E2E
// messages decrypted, marked "[e2e] ", or "[e2e: UNTRUSTED KEY (…)] " when
// signed by a key that is not the sender's trusted one; send --e2e refuses
// a recipient whose keys changed until keys trust --fingerprint accepts
// them. A backup passphrase is read like a password, or from
// FEDCTL_PASSPHRASE_FILE.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fednode/fednode/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "fedctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: fedctl register [--invite CODE] USERNAME   (password from the terminal, not echoed, or a line of standard input)
       fedctl login USERNAME   (password as for register)
       fedctl send TO CONTENT [TAG...]
       fedctl inbox [-after CURSOR] [-limit N]
       fedctl tail [-after CURSOR]
       fedctl logout
       fedctl admin federation [open|allowlist|reset] [-allow D,D] [-block D,D]
       fedctl admin dead-letters [redrive|purge -id ID | -peer DOMAIN | -all]
       fedctl admin retry-peer DOMAIN
       fedctl admin rotate-keys sig|enc [OVERLAP]
       fedctl admin revoke-sessions
       fedctl admin bans | ban KEY [DURATION [REASON]] | unban KEY
       fedctl admin rotate-jwt-secret
       fedctl admin invites create [-n N] [-expires DURATION] | list | revoke CODE` + usersUsage + keysUsage

// command runs one command; run (cli.go) wraps it.
func command(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	base := nodeURL(getenv)
	tokenFile := getenv("FEDCTL_TOKEN_FILE")
	if tokenFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		tokenFile = filepath.Join(home, ".config", "fednode", "token")
	}
	c := &client.Client{BaseURL: base, Token: getenv("FEDNODE_TOKEN")}
	if c.Token == "" {
		if b, err := os.ReadFile(tokenFile); err == nil {
			c.Token = strings.TrimSpace(string(b))
		}
	}
	out := json.NewEncoder(stdout)

	cmd, rest := args[0], args[1:]
	switch cmd {
	case "register":
		name, invite, err := registerArgs(rest)
		if err != nil {
			return err
		}
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if err := c.RegisterWithInvite(ctx, name, pw, invite); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registered %s\n", name)
		return nil
	case "login":
		if len(rest) != 1 {
			return errors.New(usage)
		}
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return err
		}
		exp, err := c.Login(ctx, rest[0], pw)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(tokenFile, []byte(c.Token+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "logged in as %s until %s (token saved in %s)\n", rest[0], exp, tokenFile)
		return nil
	case "logout":
		if err := c.Logout(ctx); err != nil {
			return err
		}
		_ = os.Remove(tokenFile)
		fmt.Fprintln(stdout, "logged out")
		return nil
	case "keys":
		k, err := newKeyring(c, stdin, stderr, getenv)
		if err != nil {
			return err
		}
		return keysCommand(ctx, k, rest, stdout, stderr)
	case "send":
		if len(rest) > 0 && rest[0] == "--e2e" {
			if len(rest) < 3 {
				return errors.New(usage)
			}
			k, err := newKeyring(c, stdin, stderr, getenv)
			if err != nil {
				return err
			}
			return k.sendE2E(ctx, rest[1], rest[2], rest[3:], out)
		}
		if len(rest) < 2 {
			return errors.New(usage)
		}
		id, status, err := c.Send(ctx, rest[0], rest[1], rest[2:])
		if err != nil {
			return err
		}
		return out.Encode(map[string]string{"id": id, "status": status})
	case "inbox":
		fs := flag.NewFlagSet("inbox", flag.ContinueOnError)
		fs.SetOutput(stderr)
		after := fs.String("after", "", "cursor to start after")
		limit := fs.Int("limit", 50, "messages to show (1-200)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		p, err := c.Messages(ctx, *after, *limit)
		if err != nil {
			return err
		}
		k, err := newKeyring(c, stdin, stderr, getenv)
		if err != nil {
			return err
		}
		for _, m := range p.Messages {
			k.reveal(ctx, &m)
			if err := out.Encode(m); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "next: %s\n", p.Next)
		return nil
	case "tail":
		fs := flag.NewFlagSet("tail", flag.ContinueOnError)
		fs.SetOutput(stderr)
		after := fs.String("after", "", "cursor to resume after (default: from now)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		k, err := newKeyring(c, stdin, stderr, getenv)
		if err != nil {
			return err
		}
		return c.Tail(ctx, *after, func(m client.Message) error { k.reveal(ctx, &m); return out.Encode(m) },
			func(state string) { fmt.Fprintln(stderr, "tail:", state) })
	case "admin":
		return admin(ctx, c, rest, out, stderr)
	default:
		return errors.New(usage)
	}
}

// admin runs the operator's commands; they need an admin's token.
func admin(ctx context.Context, c *client.Client, args []string, out *json.Encoder, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "users", "user", "suspend", "unsuspend", "unlock", "grant-admin", "revoke-admin", "delete-user":
		return adminUsers(ctx, c, args, out, stderr)
	case "federation":
		if len(args) == 1 {
			p, err := c.FederationPolicy(ctx)
			if err != nil {
				return err
			}
			return out.Encode(p)
		}
		fs := flag.NewFlagSet("federation", flag.ContinueOnError)
		fs.SetOutput(stderr)
		allow := fs.String("allow", "", "comma-separated allowlist")
		block := fs.String("block", "", "comma-separated blocklist")
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		split := func(s string) []string {
			if s == "" {
				return []string{}
			}
			return strings.Split(s, ",")
		}
		p, err := c.SetFederationPolicy(ctx, client.Policy{Mode: args[1], Allowlist: split(*allow), Blocklist: split(*block)}, args[1] == "reset")
		if err != nil {
			return err
		}
		return out.Encode(p)
	case "dead-letters":
		return deadLetters(ctx, c, args[1:], out, stderr)
	case "retry-peer":
		if len(args) != 2 {
			return errors.New(usage)
		}
		if err := c.RetryPeer(ctx, args[1]); err != nil {
			return err
		}
		return out.Encode(map[string]string{"peer": args[1]})
	case "rotate-keys":
		if len(args) < 2 || len(args) > 3 {
			return errors.New(usage)
		}
		overlap := ""
		if len(args) == 3 {
			overlap = args[2]
		}
		id, err := c.RotateKeys(ctx, args[1], overlap)
		if err != nil {
			return err
		}
		return out.Encode(map[string]string{"id": id})
	case "bans":
		bans, err := c.Bans(ctx)
		if err != nil {
			return err
		}
		for _, b := range bans {
			if err := out.Encode(b); err != nil {
				return err
			}
		}
		return nil
	case "ban":
		if len(args) < 2 || len(args) > 4 {
			return errors.New(usage)
		}
		duration, reason := "", ""
		if len(args) > 2 {
			duration = args[2]
		}
		if len(args) > 3 {
			reason = args[3]
		}
		b, err := c.AddBan(ctx, args[1], duration, reason)
		if err != nil {
			return err
		}
		return out.Encode(b)
	case "unban":
		if len(args) != 2 {
			return errors.New(usage)
		}
		return c.LiftBan(ctx, args[1])
	case "rotate-jwt-secret":
		n, err := c.RotateJWTSecret(ctx)
		if err != nil {
			return err
		}
		return out.Encode(map[string]int{"version": n})
	case "invites":
		return adminInvites(ctx, c, args[1:], out, stderr)
	case "revoke-sessions":
		n, err := c.RevokeAllSessions(ctx)
		if err != nil {
			return err
		}
		return out.Encode(map[string]int{"revoked": n})
	}
	return errors.New(usage)
}
