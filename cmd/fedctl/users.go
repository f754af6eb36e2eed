package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fednode/fednode/client"
)

// usersUsage is the part of the usage that manages users.
const usersUsage = `
       fedctl admin users [-prefix P] [-q SUBSTRING] [-role admin|user] [-after NAME] [-limit N]
       fedctl admin user NAME
       fedctl admin suspend NAME [REASON] | unsuspend NAME
       fedctl admin unlock NAME
       fedctl admin grant-admin NAME | revoke-admin NAME
       fedctl admin delete-user NAME -yes   (irreversible; the name stays reserved)`

// adminUsers runs the user management commands: a user (or page of users)
// is printed as one JSON object a line, the next page's cursor on stderr.
func adminUsers(ctx context.Context, c *client.Client, args []string, out *json.Encoder, stderr io.Writer) error {
	one := func(u client.User, err error) error {
		if err != nil {
			return err
		}
		return out.Encode(u)
	}
	cmd, rest := args[0], args[1:]
	if cmd == "users" {
		fs := flag.NewFlagSet("users", flag.ContinueOnError)
		fs.SetOutput(stderr)
		var q client.UserQuery
		fs.StringVar(&q.Prefix, "prefix", "", "only names that start with it")
		fs.StringVar(&q.Q, "q", "", "only names that contain it")
		fs.StringVar(&q.Role, "role", "", "only users of this role (admin or user)")
		fs.StringVar(&q.After, "after", "", "the next: of the previous page")
		fs.IntVar(&q.Limit, "limit", 50, "users to show (1-200)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		p, err := c.Users(ctx, q)
		if err != nil {
			return err
		}
		for _, u := range p.Users {
			if err := out.Encode(u); err != nil {
				return err
			}
		}
		if p.Next != "" {
			fmt.Fprintf(stderr, "next: %s\n", p.Next)
		}
		return nil
	}
	if len(rest) == 0 {
		return errors.New(usage)
	}
	name := rest[0]
	switch {
	case cmd == "user" && len(rest) == 1:
		return one(c.User(ctx, name))
	case cmd == "suspend" && len(rest) <= 2:
		reason := ""
		if len(rest) == 2 {
			reason = rest[1]
		}
		return one(c.Suspend(ctx, name, reason))
	case cmd == "unsuspend" && len(rest) == 1:
		return one(c.Unsuspend(ctx, name))
	case cmd == "unlock" && len(rest) == 1:
		return one(c.Unlock(ctx, name))
	case cmd == "grant-admin" && len(rest) == 1:
		return one(c.SetRole(ctx, name, "admin"))
	case cmd == "revoke-admin" && len(rest) == 1:
		return one(c.SetRole(ctx, name, "user"))
	case cmd == "delete-user" && len(rest) == 2 && (rest[1] == "-yes" || rest[1] == "--yes"):
		d, err := c.DeleteUser(ctx, name)
		if err != nil {
			return err
		}
		return out.Encode(d)
	case cmd == "delete-user" && len(rest) == 1:
		return fmt.Errorf("deleting %s cannot be undone and reserves the name for good; run again with -yes", name)
	}
	return errors.New(usage)
}
