// Command fednode runs a fednode node, or performs an offline admin action
// on its store. Everything it does is in package daemon; this file only reads
// the environment, sets up logging and calls daemon.Run.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/buildinfo"
	"github.com/fednode/fednode/node"
)

const usage = `usage:
  fednode                           run the node (configuration from the environment; see README)
  fednode admin promote USERNAME    give USERNAME the admin role (node must be stopped)
  fednode admin revoke-sessions     revoke every session of every user (node must be stopped)
  fednode admin invite [DURATION]   print a new invite code valid for DURATION (default 168h), for the first
                                    account of a node in REGISTRATION_MODE=invite (on bbolt, node stopped)
  fednode admin migrate-keys-to-vault  import DATA_DIR/keys into Vault Transit (then set KEYS_BACKEND=vault)
  fednode admin vault-policy [migrate]  print the Vault policy this configuration needs (or the migration's)
  fednode admin check-store [FILE]  check the embedded store (DATA_DIR/feddaemon.db, or FILE: a backup) page by page
                                    and record by record; exit 1 if it is damaged (node must be stopped)
  fednode admin init-store          create an empty embedded store where DATA_DIR shows an earlier life
                                    (never replaces a store that has data)
  fednode admin backup FILE          write a backup archive of the node (store, keys, dev secret) to FILE, mode 0600,
                                    while it runs or not, and check it; on Redis it says how to back Redis up
  fednode admin restore FILE        restore a backup archive into an empty DATA_DIR (node must be stopped)
  fednode admin repair-meta         accept the intact one of the store's two meta pages when the other is damaged
  fednode admin reencrypt           seal every stored message again under a new data key (on bbolt, node stopped)
  fednode healthcheck               exit 0 if the node on LISTEN_ADDR answers /healthz (for containers)
  fednode --version                 print the version and build information
  fednode --help                    print this help

Configuration is read from the environment (secrets also from NAME_FILE): see
"Configuration" in the README, and docs/OPERATIONS.md for running a node.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fednode:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 1 {
		switch args[0] {
		case "--version", "-version", "version":
			fmt.Print(buildinfo.Read().Format("fednode"))
			return nil
		case "--help", "-help", "-h", "help":
			fmt.Print(usage)
			return nil
		}
	}
	load := daemon.FromEnv
	if len(args) == 0 {
		load = daemon.Load // the node itself: every problem of parsing and of the rules in one round
	}
	cfg, err := load(os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, name := range daemon.UnknownVariables(os.Environ()) {
		log.Warn("configuration: this variable is not one fednode reads, and is ignored; is it misspelt? (see the README)", "variable", name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch {
	case len(args) == 0:
		auditOut, closeAudit, err := openAudit(cfg.AuditLog)
		if err != nil {
			return err
		}
		defer closeAudit()
		audit := slog.New(slog.NewJSONHandler(auditOut, nil)).With("stream", "audit")
		return daemon.Run(ctx, cfg, daemon.Options{Log: log, Audit: audit})
	case len(args) == 1 && args[0] == "healthcheck":
		return healthcheck(cfg.ListenAddr, cfg.ServesTLS())
	case len(args) == 3 && args[0] == "admin" && args[1] == "promote":
		return daemon.Promote(ctx, cfg, args[2])
	case len(args) == 2 && args[0] == "admin" && args[1] == "migrate-keys-to-vault":
		if err := daemon.MigrateKeysToVault(ctx, cfg); err != nil {
			return err
		}
		fmt.Println("the node's keys are in Vault Transit; set KEYS_BACKEND=vault and restart")
		return nil
	case (len(args) == 2 || len(args) == 3 && args[2] == "migrate") && args[0] == "admin" && args[1] == "vault-policy":
		p, err := daemon.VaultPolicy(cfg, len(args) == 3)
		if err == nil {
			fmt.Print(p)
		}
		return err
	case len(args) >= 2 && len(args) <= 3 && args[0] == "admin" && args[1] == "check-store":
		file := ""
		if len(args) == 3 {
			file = args[2]
		}
		rep, err := daemon.CheckStore(ctx, cfg, file)
		if err != nil {
			return err
		}
		fmt.Print(rep)
		if rep.Damaged() {
			return fmt.Errorf("%s is damaged; see \"Damage and recovery\" in docs/OPERATIONS.md", rep.Path)
		}
		return nil
	case len(args) == 2 && args[0] == "admin" && args[1] == "reencrypt":
		n, err := daemon.Reencrypt(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("re-encrypted %d messages under a new data key\n", n)
		return nil
	case len(args) == 2 && args[0] == "admin" && args[1] == "init-store":
		path, err := daemon.InitStore(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Printf("created an empty store at %s; the node starts with no accounts and no messages\n", path)
		return nil
	case len(args) == 2 && args[0] == "admin" && args[1] == "repair-meta":
		rep, err := daemon.RepairMeta(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Print(rep)
		switch {
		case len(rep.Problems) > 0:
			return fmt.Errorf("%s has more damage than a meta page; repair-meta changed nothing: restore it from a backup", rep.Path)
		case rep.Damaged():
			return fmt.Errorf("%s: the repair did not take", rep.Path)
		}
		fmt.Printf("both meta pages of %s are valid; the store is at transaction %d\n", rep.Path, rep.Txid)
		return nil
	case len(args) == 3 && args[0] == "admin" && args[1] == "backup":
		res, err := daemon.Backup(ctx, cfg, args[2])
		if res != nil && res.Store != nil {
			fmt.Print(res)
		}
		if err != nil {
			return err
		}
		fmt.Println("OK: backup written and checked")
		return nil
	case len(args) == 3 && args[0] == "admin" && args[1] == "restore":
		rep, err := daemon.Restore(ctx, cfg, args[2])
		if rep != nil {
			fmt.Print(rep)
		}
		if err != nil {
			return err
		}
		fmt.Printf("OK: restored into %s; start the node\n", cfg.DataDir)
		return nil
	case (len(args) == 2 || len(args) == 3) && args[0] == "admin" && args[1] == "invite":
		ttl := node.DefaultInviteTTL
		if len(args) == 3 {
			if ttl, err = time.ParseDuration(args[2]); err != nil {
				return fmt.Errorf("invite: %q is not a duration such as 72h", args[2])
			}
		}
		inv, err := daemon.CreateInvite(ctx, cfg, ttl)
		if err != nil {
			return err
		}
		fmt.Println(inv.Code)
		if auditOut, closeAudit, err := openAudit(cfg.AuditLog); err == nil && cfg.AuditLog != "stdout" { // stdout holds the code alone
			defer closeAudit()
			slog.New(slog.NewJSONHandler(auditOut, nil)).With("stream", "audit").Info("invite.created", "invite", inv.Code, "by", inv.CreatedBy, "expires_at", inv.ExpiresAt)
		}
		return nil
	case len(args) == 2 && args[0] == "admin" && args[1] == "revoke-sessions":
		n, err := daemon.RevokeAllOffline(ctx, cfg)
		if err == nil {
			fmt.Printf("revoked %d sessions\n", n)
		}
		return err
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command")
	}
}

// openAudit opens the audit stream: stdout, stderr or an append-only file.
func openAudit(dest string) (io.Writer, func(), error) {
	switch dest {
	case "stdout":
		return os.Stdout, func() {}, nil
	case "stderr":
		return os.Stderr, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("AUDIT_LOG: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// healthcheck asks the local node whether it is alive. It only ever talks to
// this host's own listener, so with TLS it does not verify the certificate
// (which names the public domain, not 127.0.0.1).
func healthcheck(listen string, useTLS bool) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme, c := "http", &http.Client{Timeout: 3 * time.Second}
	if useTLS {
		scheme = "https"
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // loopback to ourselves only
	}
	resp, err := c.Get(scheme + "://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d", resp.StatusCode)
	}
	return nil
}
