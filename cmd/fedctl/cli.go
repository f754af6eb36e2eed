package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/fednode/fednode/internal/buildinfo"
)

// environment is the part of the usage text about the variables fedctl
// reads; the README's fedctl section says the same.
const environment = `environment:
  FEDNODE_URL        the node's base URL (default ` + defaultURL + `)
  FEDNODE_TOKEN      a session token; when set, the token file is not read
  FEDCTL_TOKEN_FILE  where login saves the session token (mode 0600) and the
                     other commands read it (default $HOME/.config/fednode/token)` + e2eEnvironment + `

other:
       fedctl help | -h | --help     this text
       fedctl version | --version    version and build information`

const defaultURL = "http://127.0.0.1:8080"

// nodeURL is the node fedctl talks to.
func nodeURL(getenv func(string) string) string {
	if u := getenv("FEDNODE_URL"); u != "" {
		return u
	}
	return defaultURL
}

// run answers help and version itself, runs any other command, and adds a
// hint to an error that means the node was not found where fedctl looked.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 1 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			_, err := fmt.Fprintf(stdout, "%s\n\n%s\n", usage, environment)
			return err
		case "version", "-version", "--version":
			_, err := fmt.Fprint(stdout, buildinfo.Read().Format("fedctl"))
			return err
		}
	}
	return withHint(command(ctx, args, stdin, stdout, stderr, getenv), getenv)
}

// withHint explains a refused connection or an unknown host: most often
// FEDNODE_URL is unset or points at the wrong place.
func withHint(err error, getenv func(string) string) error {
	var dnsErr *net.DNSError
	var what string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		what = "no node answers at"
	case errors.As(err, &dnsErr):
		what = "the host name does not resolve in"
	default:
		return err
	}
	where := "FEDNODE_URL=" + getenv("FEDNODE_URL")
	if getenv("FEDNODE_URL") == "" {
		where = defaultURL + " (FEDNODE_URL is not set; that is its default)"
	}
	return fmt.Errorf("%w\nhint: %s %s: start the node, or set FEDNODE_URL to its address, e.g. FEDNODE_URL=http://127.0.0.1:8081", err, what, where)
}
