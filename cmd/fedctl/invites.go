package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"

	"github.com/fednode/fednode/client"
)

// registerArgs reads "register [--invite CODE] USERNAME", the option before
// or after the name.
func registerArgs(args []string) (username, invite string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-invite" || a == "--invite":
			if i+1 == len(args) {
				return "", "", errors.New("--invite needs a code")
			}
			invite = args[i+1]
			i++
		case strings.HasPrefix(a, "-invite=") || strings.HasPrefix(a, "--invite="):
			_, invite, _ = strings.Cut(a, "=")
		case strings.HasPrefix(a, "-") || username != "":
			return "", "", errors.New(usage)
		default:
			username = a
		}
	}
	if username == "" {
		return "", "", errors.New(usage)
	}
	return username, invite, nil
}

// adminInvites runs "admin invites create [-n N] [-expires D] | list | revoke CODE".
func adminInvites(ctx context.Context, c *client.Client, args []string, out *json.Encoder, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("invites create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		n := fs.Int("n", 1, "how many codes (1-100)")
		expires := fs.String("expires", "", "how long they stay valid, e.g. 72h (default 168h)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return errors.New(usage)
		}
		invites, err := c.CreateInvites(ctx, *n, *expires)
		if err != nil {
			return err
		}
		return encodeAll(out, invites)
	case "list":
		if len(args) != 1 {
			return errors.New(usage)
		}
		invites, err := c.Invites(ctx)
		if err != nil {
			return err
		}
		return encodeAll(out, invites)
	case "revoke":
		if len(args) != 2 {
			return errors.New(usage)
		}
		if err := c.RevokeInvite(ctx, args[1]); err != nil {
			return err
		}
		return out.Encode(map[string]string{"revoked": args[1]})
	}
	return errors.New(usage)
}

// encodeAll writes one JSON line per item.
func encodeAll[T any](out *json.Encoder, items []T) error {
	for _, it := range items {
		if err := out.Encode(it); err != nil {
			return err
		}
	}
	return nil
}
