package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"

	"github.com/fednode/fednode/client"
)

// deadLetters runs "admin dead-letters [redrive|purge (-id ID | -peer DOMAIN | -all)]":
// without an action it lists them.
func deadLetters(ctx context.Context, c *client.Client, args []string, out *json.Encoder, stderr io.Writer) error {
	if len(args) == 0 {
		dl, err := c.DeadLetters(ctx)
		if err != nil {
			return err
		}
		for _, d := range dl {
			if err := out.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	action := map[string]func(context.Context, client.DeadLetterSelection) (client.DeadLetterResult, error){
		"redrive": c.RedriveDeadLetters, "purge": c.PurgeDeadLetters,
	}[args[0]]
	if action == nil {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("dead-letters "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sel client.DeadLetterSelection
	fs.StringVar(&sel.MessageID, "id", "", "the dead letter of this message id")
	fs.StringVar(&sel.Peer, "peer", "", "every dead letter to this node domain")
	fs.BoolVar(&sel.All, "all", false, "every dead letter")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		return errors.New(usage)
	}
	res, err := action(ctx, sel)
	if err != nil {
		return err
	}
	return out.Encode(res)
}
