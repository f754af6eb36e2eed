package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/e2e"
	"golang.org/x/term"
)

const keysUsage = `
       fedctl keys init [--backup]   (makes end-to-end keys on this device and publishes the public ones)
       fedctl keys restore           (this device takes the keys from your passphrase-sealed backup)
       fedctl keys show [ADDRESS]    (fingerprint; for ADDRESS whether it matches the one you trust)
       fedctl keys trust ADDRESS     (accept ADDRESS's current keys, after comparing fingerprints)
       fedctl send --e2e TO CONTENT [TAG...]`

// e2eEnvironment is the usage text about the variables of end-to-end
// encryption; the README's "End-to-end encryption" section says the same.
const e2eEnvironment = `
  FEDCTL_E2E_KEYS    this device's private end-to-end keys, per address (mode 0600;
                     default $HOME/.config/fednode/e2e-keys.json)
  FEDCTL_KNOWN_KEYS  the keys you trust, per address (mode 0600;
                     default $HOME/.config/fednode/known-keys.json)
  FEDCTL_PASSPHRASE_FILE  a file holding the backup passphrase (else it is
                     read like a password)`

// generateKeys makes a device's keys; tests replace it (RSA-4096 takes seconds).
var generateKeys = e2e.GenerateKeys

// pin is what fedctl trusts of one address's keys (trust on first use):
// the ids, the fingerprint, and the keys themselves, so that messages
// signed before a later key change still verify.
type pin struct {
	EncKeyID    string `json:"enc_key_id"`
	SigKeyID    string `json:"sig_key_id"`
	Fingerprint string `json:"fingerprint"`
	EncKey      []byte `json:"enc_key"`
	SigKey      []byte `json:"sig_key"`
}

func pinOf(p *e2e.PublicKeys) pin {
	return pin{EncKeyID: p.EncKeyID(), SigKeyID: p.SigKeyID(), Fingerprint: p.Fingerprint(), EncKey: p.EncSPKI, SigKey: p.SigSPKI}
}

// keyring is fedctl's end-to-end state for one run: the node, this
// device's private keys and the pins, in two local files.
type keyring struct {
	c                   *client.Client
	keysFile, knownFile string
	passphraseFile      string
	stdin               io.Reader
	stderr              io.Writer

	me     fednode.Address
	docs   map[string]docResult // key documents fetched in this run
	warned map[string]bool
}

type docResult struct {
	keys *e2e.PublicKeys
	err  error
	at   time.Time
}

func newKeyring(c *client.Client, stdin io.Reader, stderr io.Writer, getenv func(string) string) (*keyring, error) {
	keysFile, err := configFile(getenv, "FEDCTL_E2E_KEYS", "e2e-keys.json")
	if err != nil {
		return nil, err
	}
	knownFile, err := configFile(getenv, "FEDCTL_KNOWN_KEYS", "known-keys.json")
	if err != nil {
		return nil, err
	}
	return &keyring{c: c, keysFile: keysFile, knownFile: knownFile, passphraseFile: getenv("FEDCTL_PASSPHRASE_FILE"),
		stdin: stdin, stderr: stderr, docs: map[string]docResult{}, warned: map[string]bool{}}, nil
}

// configFile is the path in env, or file under $HOME/.config/fednode.
func configFile(getenv func(string) string, env, file string) (string, error) {
	if p := getenv(env); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "fednode", file), nil
}

// readJSONFile reads a map file; a missing file is an empty map.
func readJSONFile[V any](path string) (map[string]V, error) {
	out := map[string]V{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// writeJSONFile replaces path with m, mode 0600, through a temporary file
// so that a crash never leaves half a key file.
func writeJSONFile[V any](path string, m map[string]V) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// whoami is the caller's address.
func (k *keyring) whoami(ctx context.Context) (fednode.Address, error) {
	if !k.me.IsZero() {
		return k.me, nil
	}
	m, err := k.c.Me(ctx)
	if err != nil {
		return fednode.Address{}, err
	}
	user, domain, _ := strings.Cut(m.Address, "@")
	k.me, err = fednode.ParseAddress(user, domain)
	return k.me, err
}

// address parses a user's address; a bare name is on the caller's node.
func (k *keyring) address(ctx context.Context, s string) (fednode.Address, error) {
	me, err := k.whoami(ctx)
	if err != nil {
		return fednode.Address{}, err
	}
	return fednode.ParseAddress(s, me.Domain)
}

// ownKeys are this device's private keys for the caller.
func (k *keyring) ownKeys(ctx context.Context) (*e2e.Keys, error) {
	me, err := k.whoami(ctx)
	if err != nil {
		return nil, err
	}
	all, err := readJSONFile[json.RawMessage](k.keysFile)
	if err != nil {
		return nil, err
	}
	raw, ok := all[me.String()]
	if !ok {
		return nil, fmt.Errorf("this device has no end-to-end keys for %s: run fedctl keys init, or fedctl keys restore", me)
	}
	return e2e.ParsePrivate(raw)
}

// saveOwnKeys keeps keys as the caller's on this device; undo puts back
// what was there before.
func (k *keyring) saveOwnKeys(me fednode.Address, keys *e2e.Keys) (undo func() error, err error) {
	all, err := readJSONFile[json.RawMessage](k.keysFile)
	if err != nil {
		return nil, err
	}
	raw, err := e2e.MarshalPrivate(keys)
	if err != nil {
		return nil, err
	}
	old, had := all[me.String()]
	all[me.String()] = raw
	undo = func() error {
		if had {
			all[me.String()] = old
		} else {
			delete(all, me.String())
		}
		return writeJSONFile(k.keysFile, all)
	}
	return undo, writeJSONFile(k.keysFile, all)
}

func (k *keyring) setPin(addr fednode.Address, p *e2e.PublicKeys) error {
	pins, err := readJSONFile[pin](k.knownFile)
	if err != nil {
		return err
	}
	pins[addr.String()] = pinOf(p)
	return writeJSONFile(k.knownFile, pins)
}

// trustState compares addr's current keys with the pin: it pins them on
// first sight. changed is the old pin when they differ from it.
func (k *keyring) trustState(addr fednode.Address, cur *e2e.PublicKeys) (first bool, changed *pin, err error) {
	pins, err := readJSONFile[pin](k.knownFile)
	if err != nil {
		return false, nil, err
	}
	old, ok := pins[addr.String()]
	switch {
	case !ok:
		return true, nil, k.setPin(addr, cur)
	case old.EncKeyID != cur.EncKeyID() || old.SigKeyID != cur.SigKeyID():
		return false, &old, nil
	}
	return false, nil, nil
}

// userKeys parses who (a bare name is on the caller's node) and fetches
// its keys.
func (k *keyring) userKeys(ctx context.Context, who string) (fednode.Address, *e2e.PublicKeys, error) {
	addr, err := k.address(ctx, who)
	if err != nil {
		return addr, nil, err
	}
	keys, err := k.document(ctx, addr)
	return addr, keys, err
}

// document fetches addr's key document through the caller's node and
// checks it (once per run).
func (k *keyring) document(ctx context.Context, addr fednode.Address) (*e2e.PublicKeys, error) {
	if r, ok := k.docs[addr.String()]; ok {
		return r.keys, r.err
	}
	doc, err := k.c.UserKeys(ctx, addr.String())
	var keys *e2e.PublicKeys
	switch {
	case client.IsNotFound(err):
		err = fmt.Errorf("%s has not published end-to-end keys", addr)
	case err == nil:
		keys, err = e2e.VerifyDocument(&doc, addr)
	}
	k.docs[addr.String()] = docResult{keys, err, time.Now()}
	return keys, err
}

func changedWarning(addr fednode.Address, old *pin, cur *e2e.PublicKeys) string {
	return fmt.Sprintf("WARNING: the keys of %s changed: trusted fingerprint %s, now %s. Compare fingerprints with %s (another channel), then run: fedctl keys trust %s",
		addr, old.Fingerprint, cur.Fingerprint(), addr.User, addr)
}

// passphrase reads the backup passphrase: from FEDCTL_PASSPHRASE_FILE,
// else from the terminal without echo (twice when confirm), else as one
// line of standard input.
func (k *keyring) passphrase(confirm bool) (string, error) {
	var p string
	if k.passphraseFile != "" {
		b, err := os.ReadFile(k.passphraseFile)
		if err != nil {
			return "", fmt.Errorf("FEDCTL_PASSPHRASE_FILE: %w", err)
		}
		p = strings.TrimRight(string(b), "\r\n")
	} else {
		var err error
		if p, err = readSecret(k.stdin, k.stderr, "backup passphrase"); err != nil {
			return "", err
		}
		if f, ok := k.stdin.(*os.File); confirm && ok && term.IsTerminal(int(f.Fd())) {
			again, err := readSecret(k.stdin, k.stderr, "the passphrase again")
			if err != nil {
				return "", err
			}
			if again != p {
				return "", errors.New("the passphrases differ")
			}
		}
	}
	if strings.TrimSpace(p) == "" {
		return "", errors.New("the passphrase is empty")
	}
	return p, nil
}

// keysCommand runs fedctl keys.
func keysCommand(ctx context.Context, k *keyring, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "init":
		fs := flag.NewFlagSet("keys init", flag.ContinueOnError)
		fs.SetOutput(stderr)
		backup := fs.Bool("backup", false, "also publish the private keys sealed under a passphrase, for your other devices")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return errors.New(usage)
		}
		return k.init(ctx, *backup, stdout)
	case "restore":
		if len(args) != 1 {
			return errors.New(usage)
		}
		return k.restore(ctx, stdout)
	case "show":
		switch len(args) {
		case 1:
			return k.showOwn(ctx, stdout)
		case 2:
			return k.show(ctx, args[1], stdout)
		}
	case "trust":
		if len(args) == 2 {
			return k.trust(ctx, args[1], stdout)
		}
	}
	return errors.New(usage)
}

func (k *keyring) init(ctx context.Context, withBackup bool, stdout io.Writer) error {
	me, err := k.whoami(ctx)
	if err != nil {
		return err
	}
	var pass string
	if withBackup {
		if pass, err = k.passphrase(true); err != nil {
			return err
		}
	}
	if _, err := k.c.MyKeys(ctx); err == nil {
		fmt.Fprintln(stdout, "replacing your published keys: your contacts will be warned that your keys changed")
	}
	keys, err := generateKeys()
	if err != nil {
		return err
	}
	var backup *fednode.KeyBackup
	if withBackup {
		if backup, err = e2e.WrapBackup(pass, me, keys); err != nil {
			return err
		}
	}
	// Kept on the device before they are published: published keys
	// without their private half would make messages nobody can read.
	undo, err := k.saveOwnKeys(me, keys)
	if err != nil {
		return err
	}
	pub := keys.Public()
	if _, err := k.c.PutKeys(ctx, pub.EncSPKI, pub.SigSPKI, backup); err != nil {
		return errors.Join(err, undo())
	}
	if err := k.setPin(me, pub); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "end-to-end keys for %s published\nfingerprint: %s\n", me, pub.Fingerprint())
	if withBackup {
		fmt.Fprintln(stdout, "backup published: restore it on another device with fedctl keys restore")
	}
	return nil
}

// published is the caller's address, published keys and backup.
func (k *keyring) published(ctx context.Context) (fednode.Address, *e2e.PublicKeys, *fednode.KeyBackup, error) {
	me, err := k.whoami(ctx)
	if err != nil {
		return me, nil, nil, err
	}
	mine, err := k.c.MyKeys(ctx)
	if client.IsNotFound(err) {
		return me, nil, nil, errors.New("you have not published end-to-end keys: run fedctl keys init")
	}
	if err != nil {
		return me, nil, nil, err
	}
	pub, err := e2e.VerifyDocument(&mine.Document, me)
	return me, pub, mine.Backup, err
}

func (k *keyring) restore(ctx context.Context, stdout io.Writer) error {
	me, pub, backup, err := k.published(ctx)
	if err != nil {
		return err
	}
	if backup == nil {
		return errors.New("your keys have no backup on the node: on the device that has them, run fedctl keys init --backup (new keys: a key change for your contacts)")
	}
	pass, err := k.passphrase(false)
	if err != nil {
		return err
	}
	keys, err := e2e.UnwrapBackup(pass, me, pub.EncKeyID(), pub.SigKeyID(), backup)
	if err != nil {
		return err
	}
	if _, err := k.saveOwnKeys(me, keys); err != nil {
		return err
	}
	if err := k.setPin(me, pub); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "end-to-end keys for %s restored on this device\nfingerprint: %s\n", me, pub.Fingerprint())
	return nil
}

func (k *keyring) showOwn(ctx context.Context, stdout io.Writer) error {
	me, pub, backup, err := k.published(ctx)
	if err != nil {
		return err
	}
	device := "this device has the private keys"
	if own, err := k.ownKeys(ctx); err != nil {
		device = "this device has NO private keys for them: run fedctl keys restore"
	} else if op := own.Public(); op.EncKeyID() != pub.EncKeyID() || op.SigKeyID() != pub.SigKeyID() {
		device = "this device holds OTHER keys than the published ones: run fedctl keys restore"
	}
	onNode := "no backup on the node"
	if backup != nil {
		onNode = "a passphrase-sealed backup is on the node"
	}
	fmt.Fprintf(stdout, "%s\nfingerprint: %s\n%s; %s\n", me, pub.Fingerprint(), device, onNode)
	return nil
}

func (k *keyring) show(ctx context.Context, who string, stdout io.Writer) error {
	addr, cur, err := k.userKeys(ctx, who)
	if err != nil {
		return err
	}
	first, changed, err := k.trustState(addr, cur)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\nfingerprint: %s\n", addr, cur.Fingerprint())
	switch {
	case changed != nil:
		fmt.Fprintln(stdout, changedWarning(addr, changed, cur))
	case first:
		fmt.Fprintln(stdout, "first seen now, and trusted from now on (trust on first use): compare this fingerprint with "+addr.User)
	default:
		fmt.Fprintln(stdout, "trusted: the same keys as before")
	}
	return nil
}

func (k *keyring) trust(ctx context.Context, who string, stdout io.Writer) error {
	addr, cur, err := k.userKeys(ctx, who)
	if err != nil {
		return err
	}
	if err := k.setPin(addr, cur); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trusted %s\nfingerprint: %s\n", addr, cur.Fingerprint())
	return nil
}

// sendE2E seals content and tags to to and sends them, refusing when
// to's keys changed since they were trusted.
func (k *keyring) sendE2E(ctx context.Context, to, content string, tags []string, out *json.Encoder) error {
	own, err := k.ownKeys(ctx)
	if err != nil {
		return err
	}
	me, err := k.whoami(ctx)
	if err != nil {
		return err
	}
	addr, cur, err := k.userKeys(ctx, to)
	if err != nil {
		return fmt.Errorf("cannot send end-to-end encrypted: %w", err)
	}
	_, changed, err := k.trustState(addr, cur)
	if err != nil {
		return err
	}
	if changed != nil {
		return fmt.Errorf("refused: the keys of %s changed since you trusted them (trusted fingerprint %s, now %s); compare fingerprints with %s, then run fedctl keys trust %s",
			addr, changed.Fingerprint, cur.Fingerprint(), addr.User, addr)
	}
	id := fednode.NewID(time.Now())
	sealed, err := e2e.Seal(id, me, addr, content, tags, []*e2e.PublicKeys{cur}, own)
	if err != nil {
		return err
	}
	status, err := k.c.SendE2E(ctx, addr.String(), id, sealed)
	if err != nil {
		return err
	}
	return out.Encode(map[string]string{"id": id, "status": status})
}

// reveal replaces an E2E message's content and tags with what it opens
// to, marked "[e2e] ", or with "[e2e: could not decrypt: reason]"; it
// warns once per sender whose keys changed. Other messages pass as they are.
func (k *keyring) reveal(ctx context.Context, m *client.Message) {
	if m.E2E == nil {
		return
	}
	content, tags, err := k.open(ctx, m)
	if err != nil {
		m.Content, m.Tags = "[e2e: could not decrypt: "+reason(err)+"]", []string{}
	} else {
		m.Content, m.Tags = "[e2e] "+content, tags
	}
	m.E2E = nil
}

func (k *keyring) open(ctx context.Context, m *client.Message) (string, []string, error) {
	me, err := k.whoami(ctx)
	if err != nil {
		return "", nil, err
	}
	from, err := fednode.ParseAddress(m.From, me.Domain)
	if err != nil {
		return "", nil, err
	}
	to, err := fednode.ParseAddress(m.To, me.Domain)
	if err != nil {
		return "", nil, err
	}
	own, err := k.ownKeys(ctx)
	if err != nil {
		return "", nil, errors.New("this device has no end-to-end keys")
	}
	// tail runs long: a sender may have made new keys since the fetch.
	if r, ok := k.docs[from.String()]; ok && time.Since(r.at) > time.Minute && (r.keys == nil || r.keys.SigKeyID() != m.E2E.SigKey) {
		delete(k.docs, from.String())
	}
	sender, err := k.document(ctx, from)
	if err != nil {
		return "", nil, err
	}
	_, changed, err := k.trustState(from, sender)
	if err != nil {
		return "", nil, err
	}
	if changed != nil && !k.warned[from.String()] {
		k.warned[from.String()] = true
		fmt.Fprintln(k.stderr, changedWarning(from, changed, sender))
	}
	// A message signed before a key change verifies with the pinned keys.
	if changed != nil && m.E2E.SigKey == changed.SigKeyID {
		if old, err := e2e.ParsePublicKeys(changed.EncKey, changed.SigKey); err == nil {
			sender = old
		}
	}
	return e2e.Open(m.ID, from, to, m.E2E, own, sender)
}

// reason says why a message could not be opened, for a person.
func reason(err error) string {
	for _, c := range []struct {
		err error
		why string
	}{
		{e2e.ErrNotForMe, "not encrypted to this device's key"},
		{e2e.ErrWrongSigner, "signed by another key than the sender's"},
		{e2e.ErrBadSignature, "the signature does not verify"},
		{e2e.ErrCannotOpen, "it does not decrypt"},
		{e2e.ErrBadPlaintext, "the decrypted message is malformed"},
		{e2e.ErrInvalid, "the message is malformed"},
	} {
		if errors.Is(err, c.err) {
			return c.why
		}
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}
