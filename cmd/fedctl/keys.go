package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/e2e"
	"github.com/fednode/fednode/internal/atomicfile"
	"golang.org/x/term"
	"golang.org/x/text/unicode/norm"
)

const keysUsage = `
       fedctl keys init [--backup] [--replace]  (makes end-to-end keys on this device and publishes
                                     the public ones; --replace: new keys over your published ones)
       fedctl keys restore           (this device takes the keys from your passphrase-sealed backup)
       fedctl keys show [ADDRESS]    (fingerprint; for ADDRESS whether it matches the one you trust)
       fedctl keys trust ADDRESS --fingerprint FP  (accept ADDRESS's current keys if their
                                     fingerprint is FP, the one ADDRESS gave you; spaces optional)
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
// signed before a later key change still verify; and the signing keys it
// trusted before, each until the document that replaced it (PROTOCOL §5.5).
type pin struct {
	EncKeyID    string    `json:"enc_key_id"`
	SigKeyID    string    `json:"sig_key_id"`
	Fingerprint string    `json:"fingerprint"`
	EncKey      []byte    `json:"enc_key"`
	SigKey      []byte    `json:"sig_key"`
	Previous    []earlier `json:"previous,omitempty"`
}

// earlier is a signing key trusted before a key change: it vouches for
// messages made before Until (their id's time) only.
type earlier struct {
	SigKeyID string    `json:"sig_key_id"`
	SigKey   []byte    `json:"sig_key"`
	Until    time.Time `json:"until"`
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

	// Read once per run: own and ownErr after ownLoaded, pins when not
	// nil; both are refreshed when this run writes them.
	own       *e2e.Keys
	ownErr    error
	ownLoaded bool
	pins      map[string]pin
}

type docResult struct {
	keys      *e2e.PublicKeys
	createdAt time.Time // the document's created_at
	err       error
	at        time.Time
}

// errNoKeys is document's error when the user publishes no keys.
var errNoKeys = errors.New("has not published end-to-end keys")

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

// updateJSONFile reads the map file path, lets change modify the map and
// writes it back (mode 0600, atomically), all under path's lock: another
// fedctl (a running tail, a keys trust) that changes the same file at the
// same time loses nothing, and a crash never leaves half a key file. It
// returns the map as written.
func updateJSONFile[V any](path string, change func(map[string]V)) (map[string]V, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	unlock, err := atomicfile.Lock(path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := readJSONFile[V](path)
	if err != nil {
		return nil, err
	}
	change(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return m, atomicfile.WriteFile(path, append(b, '\n'), 0o600)
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
	k.me, err = fednode.ParseAddress(m.Address, "")
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

// ownKeys are this device's private keys for the caller (read once per run).
func (k *keyring) ownKeys(ctx context.Context) (*e2e.Keys, error) {
	if k.ownLoaded {
		return k.own, k.ownErr
	}
	me, err := k.whoami(ctx)
	if err != nil {
		return nil, err
	}
	all, err := readJSONFile[json.RawMessage](k.keysFile)
	if err != nil {
		return nil, err
	}
	if raw, ok := all[me.String()]; ok {
		k.own, k.ownErr = e2e.ParsePrivate(raw)
	} else {
		k.own, k.ownErr = nil, fmt.Errorf("this device has no end-to-end keys for %s: run fedctl keys init, or fedctl keys restore", me)
	}
	k.ownLoaded = true
	return k.own, k.ownErr
}

// saveOwnKeys keeps raw (e2e.MarshalPrivate) as the caller's keys on this
// device, or forgets the caller's keys when raw is nil. It returns what
// was there before (nil when nothing was).
func (k *keyring) saveOwnKeys(me fednode.Address, raw json.RawMessage) (prev json.RawMessage, err error) {
	_, err = updateJSONFile(k.keysFile, func(all map[string]json.RawMessage) {
		prev = all[me.String()]
		if raw == nil {
			delete(all, me.String())
		} else {
			all[me.String()] = raw
		}
	})
	k.ownLoaded = false
	return prev, err
}

// loadPins reads the pins once per run.
func (k *keyring) loadPins() (map[string]pin, error) {
	if k.pins == nil {
		pins, err := readJSONFile[pin](k.knownFile)
		if err != nil {
			return nil, err
		}
		k.pins = pins
	}
	return k.pins, nil
}

// setPin pins p as addr's keys; with onlyFirst, only when addr has no pin
// in the file (another fedctl may have pinned it since this run read the
// pins). A replaced signing key is kept as an earlier one, trusted for
// messages made before since, the replacing document's created_at. It
// returns the pin now in force.
func (k *keyring) setPin(addr fednode.Address, p *e2e.PublicKeys, onlyFirst bool, since time.Time) (pin, error) {
	pins, err := updateJSONFile(k.knownFile, func(pins map[string]pin) {
		old, ok := pins[addr.String()]
		if ok && onlyFirst {
			return
		}
		np := pinOf(p)
		if ok {
			np.Previous = old.Previous
			if old.SigKeyID != np.SigKeyID {
				np.Previous = append(np.Previous, earlier{SigKeyID: old.SigKeyID, SigKey: old.SigKey, Until: since})
			}
		}
		pins[addr.String()] = np
	})
	if err != nil {
		return pin{}, err
	}
	k.pins = pins
	return pins[addr.String()], nil
}

// trustState compares addr's current keys with the pin: it pins them on
// first sight. changed is the old pin when they differ from it.
func (k *keyring) trustState(addr fednode.Address, cur *e2e.PublicKeys) (first bool, changed *pin, err error) {
	pins, err := k.loadPins()
	if err != nil {
		return false, nil, err
	}
	old, ok := pins[addr.String()]
	if ok && (old.EncKeyID != cur.EncKeyID() || old.SigKeyID != cur.SigKeyID()) {
		// Another fedctl (keys trust beside a running tail) may have
		// pinned cur since this run read the pins.
		k.pins = nil
		if pins, err = k.loadPins(); err != nil {
			return false, nil, err
		}
		old, ok = pins[addr.String()]
	}
	if !ok {
		if old, err = k.setPin(addr, cur, true, time.Time{}); err != nil {
			return false, nil, err
		}
		first = old.SigKeyID == cur.SigKeyID() && old.EncKeyID == cur.EncKeyID()
	}
	if old.EncKeyID != cur.EncKeyID() || old.SigKeyID != cur.SigKeyID() {
		return false, &old, nil
	}
	return first, nil, nil
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
	var createdAt time.Time
	switch {
	case client.IsNotFound(err):
		err = fmt.Errorf("%s %w", addr, errNoKeys)
	case err == nil:
		if keys, err = e2e.VerifyDocument(&doc, addr); err == nil {
			createdAt, _ = time.Parse(time.RFC3339Nano, doc.CreatedAt) // Check parsed it
		}
	}
	k.docs[addr.String()] = docResult{keys, createdAt, err, time.Now()}
	return keys, err
}

// keysChanged says that addr's keys are no longer the trusted ones, and
// what to do about it.
func keysChanged(addr fednode.Address, old *pin, cur *e2e.PublicKeys) string {
	return fmt.Sprintf("the keys of %s changed: trusted fingerprint %s, now %s; compare fingerprints with %s (another channel), then run: fedctl keys trust %s --fingerprint \"<the fingerprint %s gives you>\"",
		addr, old.Fingerprint, cur.Fingerprint(), addr.User, addr, addr.User)
}

// sameFingerprint compares a fingerprint as a person typed it (spaces
// optional, any case) with one as Fingerprint prints it.
func sameFingerprint(typed, fp string) bool {
	squash := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), "")) }
	return squash(typed) == squash(fp)
}

// minPassphrase is the fewest characters (after NFC, as PBKDF2 sees the
// passphrase) a new backup passphrase may have: the web client's rule.
const minPassphrase = 10

// passphrase reads the backup passphrase: from FEDCTL_PASSPHRASE_FILE,
// else from the terminal without echo (twice when it is a new one), else
// as one line of standard input. A new one must have minPassphrase
// characters.
func (k *keyring) passphrase(isNew bool) (string, error) {
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
		if f, ok := k.stdin.(*os.File); isNew && ok && term.IsTerminal(int(f.Fd())) {
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
	if n := utf8.RuneCountInString(norm.NFC.String(p)); isNew && n < minPassphrase {
		return "", fmt.Errorf("the passphrase has %d characters: a backup passphrase needs at least %d (it is all that protects your private keys on the node)", n, minPassphrase)
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
		replace := fs.Bool("replace", false, "make new keys even though you have published keys (a key change for your contacts)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return errors.New(usage)
		}
		return k.init(ctx, *backup, *replace, stdout)
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
		fs := flag.NewFlagSet("keys trust", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fp := fs.String("fingerprint", "", "the fingerprint ADDRESS gave you (another channel); spaces optional")
		who, err := parseInterleaved(fs, args[1:])
		if err != nil {
			return err
		}
		if len(who) != 1 {
			return errors.New(usage)
		}
		if *fp == "" {
			return fmt.Errorf("keys trust needs --fingerprint: ask %s for the fingerprint fedctl keys show (or the web client) gives them, and pass it, so that what you trust is what you compared", who[0])
		}
		return k.trust(ctx, who[0], *fp, stdout)
	}
	return errors.New(usage)
}

// parseInterleaved parses fs's flags before and after the operands
// (keys trust bob --fingerprint X, or keys trust --fingerprint X bob) and
// returns the operands.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (k *keyring) init(ctx context.Context, withBackup, replace bool, stdout io.Writer) error {
	me, err := k.whoami(ctx)
	if err != nil {
		return err
	}
	switch mine, err := k.c.MyKeys(ctx); {
	case err == nil && !replace:
		fp := "unreadable"
		if pub, err := e2e.VerifyDocument(&mine.Document, me); err == nil {
			fp = pub.Fingerprint()
		}
		return fmt.Errorf("you have already published end-to-end keys (fingerprint %s): to use them on this device run fedctl keys restore; to make new ones instead (a key change your contacts are warned about, and messages to the old keys become unreadable here) run fedctl keys init --replace", fp)
	case err == nil:
		fmt.Fprintln(stdout, "replacing your published keys: your contacts will be warned that your keys changed")
	case !client.IsNotFound(err):
		return err
	}
	var pass string
	if withBackup {
		if pass, err = k.passphrase(true); err != nil {
			return err
		}
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
	raw, err := e2e.MarshalPrivate(keys)
	if err != nil {
		return err
	}
	// Kept on the device before they are published: published keys
	// without their private half would make messages nobody can read.
	prev, err := k.saveOwnKeys(me, raw)
	if err != nil {
		return err
	}
	pub := keys.Public()
	if _, err := k.c.PutKeys(ctx, pub.EncSPKI, pub.SigSPKI, backup); err != nil {
		if refused(err) {
			// The node refused them: it holds what it held before.
			_, uerr := k.saveOwnKeys(me, prev)
			return errors.Join(err, uerr)
		}
		// No answer, or a 5xx: the node may have stored them all the
		// same, and undoing would lose the private half of published keys.
		if _, now, _, cerr := k.published(ctx); cerr != nil || now.EncKeyID() != pub.EncKeyID() || now.SigKeyID() != pub.SigKeyID() {
			return fmt.Errorf("publishing the new keys: %w; your node does not show them published now (%v): this device keeps the new keys all the same, in case they arrive; run fedctl keys show to see what is published, then fedctl keys init --replace to try again", err, publishedNow(now, cerr))
		}
	}
	if _, err := k.setPin(me, pub, false, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "end-to-end keys for %s published\nfingerprint: %s\n", me, pub.Fingerprint())
	if withBackup {
		fmt.Fprintln(stdout, "backup published: restore it on another device with fedctl keys restore")
	}
	return nil
}

// refused tells a definite refusal by the node (a 4xx answer: nothing was
// stored) from a failure after which the node may have acted.
func refused(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusRequestTimeout
}

func publishedNow(now *e2e.PublicKeys, err error) string {
	if err != nil {
		return err.Error()
	}
	return "it shows fingerprint " + now.Fingerprint()
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
	raw, err := e2e.MarshalPrivate(keys)
	if err != nil {
		return err
	}
	if _, err := k.saveOwnKeys(me, raw); err != nil {
		return err
	}
	if _, err := k.setPin(me, pub, false, time.Now()); err != nil {
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
		fmt.Fprintln(stdout, "WARNING: "+keysChanged(addr, changed, cur))
	case first:
		fmt.Fprintln(stdout, "first seen now, and trusted from now on (trust on first use): compare this fingerprint with "+addr.User)
	default:
		fmt.Fprintln(stdout, "trusted: the same keys as before")
	}
	return nil
}

// trust pins who's current keys if their fingerprint is the one the user
// compared: the node cannot show one document to keys show and pin
// another here.
func (k *keyring) trust(ctx context.Context, who, fingerprint string, stdout io.Writer) error {
	addr, cur, err := k.userKeys(ctx, who)
	if err != nil {
		return err
	}
	if !sameFingerprint(fingerprint, cur.Fingerprint()) {
		return fmt.Errorf("refused, nothing trusted: the keys your node gives now for %s have fingerprint %s, not the %s you compared", addr, cur.Fingerprint(), fingerprint)
	}
	if _, err := k.setPin(addr, cur, false, k.docs[addr.String()].createdAt); err != nil {
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
		return errors.New("refused: " + keysChanged(addr, changed, cur))
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
// to, marked "[e2e] ", or "[e2e: UNTRUSTED KEY (why)] " when it was
// signed by a key that is not the sender's trusted one, or with
// "[e2e: could not decrypt: reason]". Other messages pass as they are.
func (k *keyring) reveal(ctx context.Context, m *client.Message) {
	if m.E2E == nil {
		return
	}
	content, tags, untrusted, err := k.open(ctx, m)
	switch {
	case err != nil:
		m.Content, m.Tags = "[e2e: could not decrypt: "+reason(err)+"]", []string{}
	case untrusted != "":
		m.Content, m.Tags = "[e2e: UNTRUSTED KEY ("+untrusted+")] "+content, tags
	default:
		m.Content, m.Tags = "[e2e] "+content, tags
	}
	m.E2E = nil
}

// open opens m. untrusted is not empty when m verifies only with a key
// that is not the sender's pinned one (its sender's node may have swapped
// the sender's keys to forge it): it says what changed and what to do.
func (k *keyring) open(ctx context.Context, m *client.Message) (content string, tags []string, untrusted string, err error) {
	me, err := k.whoami(ctx)
	if err != nil {
		return "", nil, "", err
	}
	from, err := fednode.ParseAddress(m.From, me.Domain)
	if err != nil {
		return "", nil, "", err
	}
	to, err := fednode.ParseAddress(m.To, me.Domain)
	if err != nil {
		return "", nil, "", err
	}
	own, err := k.ownKeys(ctx)
	if err != nil {
		return "", nil, "", errors.New("this device has no end-to-end keys")
	}
	pins, err := k.loadPins()
	if err != nil {
		return "", nil, "", err
	}
	// tail runs long: a sender may have made new keys since the fetch.
	if r, ok := k.docs[from.String()]; ok && time.Since(r.at) > time.Minute && (r.keys == nil || r.keys.SigKeyID() != m.E2E.SigKey) {
		delete(k.docs, from.String())
	}
	made, _ := fednode.IDTime(m.ID)
	if p, ok := pins[from.String()]; ok {
		if p.SigKeyID == m.E2E.SigKey {
			return k.openPinned(ctx, m, from, to, own, p.SigKey, func() string {
				// The pinned key vouches for what was made before the
				// sender published other keys, or none (PROTOCOL §5.5);
				// a node that cannot answer now changes nothing.
				cur, derr := k.document(ctx, from)
				switch {
				case errors.Is(derr, errNoKeys):
					return fmt.Sprintf("signed by the key you trusted for %s, who publishes no end-to-end keys now; ask %s", from, from.User)
				case derr == nil && cur.SigKeyID() != p.SigKeyID && !made.Before(k.docs[from.String()].createdAt):
					return keysChanged(from, &p, cur)
				}
				return ""
			})
		}
		for _, e := range p.Previous {
			if e.SigKeyID == m.E2E.SigKey {
				return k.openPinned(ctx, m, from, to, own, e.SigKey, func() string {
					if made.Before(e.Until) {
						return ""
					}
					return fmt.Sprintf("signed by a key of %s that was replaced on %s, in a message made after that", from, e.Until.UTC().Format(time.RFC3339))
				})
			}
		}
	}
	sender, err := k.document(ctx, from)
	if err != nil {
		return "", nil, "", err
	}
	_, changed, err := k.trustState(from, sender)
	if err != nil {
		return "", nil, "", err
	}
	if content, tags, err = e2e.Open(m.ID, from, to, m.E2E, own, sender); err != nil {
		return "", nil, "", err
	}
	if changed != nil {
		untrusted = keysChanged(from, changed, sender)
		if !k.warned[from.String()] {
			k.warned[from.String()] = true
			fmt.Fprintln(k.stderr, "WARNING: "+untrusted)
		}
	}
	return content, tags, untrusted, nil
}

// openPinned opens m with a signing key fedctl trusted (its own pin, or
// an earlier one); untrusted, asked only once m opens, says why that key
// does not vouch for m, or nothing.
func (k *keyring) openPinned(ctx context.Context, m *client.Message, from, to fednode.Address, own *e2e.Keys, sigSPKI []byte, untrusted func() string) (string, []string, string, error) {
	sig, err := x509.ParsePKIXPublicKey(sigSPKI)
	pub, ok := sig.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return "", nil, "", fmt.Errorf("the pinned key of %s does not parse: %v", from, err)
	}
	// Open takes the sender's public keys; only the signing key is used.
	content, tags, err := e2e.Open(m.ID, from, to, m.E2E, own, &e2e.PublicKeys{Sig: pub, SigSPKI: sigSPKI})
	if err != nil {
		return "", nil, "", err
	}
	return content, tags, untrusted(), nil
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
