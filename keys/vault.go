package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fednode/fednode"
	vault "github.com/hashicorp/vault/api"
)

// ErrUnavailable wraps every failure to reach Vault (down, sealed, refusing
// our token): callers answer 503 and retry, and never fall back to anything
// else.
var ErrUnavailable = fmt.Errorf("keys: vault is unavailable: %w", fednode.ErrUnavailable)

// VaultConfig is how the node reaches Vault.
type VaultConfig struct {
	Addr         string
	Token        string // VAULT_TOKEN; or AppRole:
	RoleID       string
	SecretID     string
	AppRoleMount string // default "approle"
	TransitMount string // default "transit"
	KVMount      string // default "secret" (KV version 2)
	KeyPrefix    string // Transit keys are <prefix>-sig and <prefix>-enc; default "fednode"
	HTTPClient   *http.Client
	Log          *slog.Logger
}

// Defaults of VaultConfig, shared with PolicyParams.
const (
	defaultTransitMount = "transit"
	defaultKVMount      = "secret"
	defaultKeyPrefix    = "fednode"
)

// VaultClient is an authenticated Vault client. With AppRole it logs in at
// start, keeps its token renewed, and logs in once more when Vault refuses
// the token (revoked or expired), instead of failing until a restart. A
// static token is renewed while renewable; when it is refused, calls fail
// with ErrUnavailable until an operator gives the node a new one.
type VaultClient struct {
	c     *vault.Client
	gen   *vault.Client // c with keygenTimeout, for calls that make RSA keys
	cfg   VaultConfig
	calls atomic.Int64

	mu      sync.Mutex
	watcher *vault.LifetimeWatcher
	closed  bool
}

// NewVaultClient connects and authenticates.
func NewVaultClient(ctx context.Context, cfg VaultConfig) (*VaultClient, error) {
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = "approle"
	}
	if cfg.TransitMount == "" {
		cfg.TransitMount = defaultTransitMount
	}
	if cfg.KVMount == "" {
		cfg.KVMount = defaultKVMount
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = defaultKeyPrefix
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Addr
	vc.Timeout = 10 * time.Second
	vc.MaxRetries = 1
	if cfg.HTTPClient != nil {
		vc.HttpClient = cfg.HTTPClient
	}
	c, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("keys: vault client: %w", err)
	}
	c.ClearNamespace()
	gen, err := c.Clone()
	if err != nil {
		return nil, fmt.Errorf("keys: vault client: %w", err)
	}
	gen.SetClientTimeout(keygenTimeout)
	v := &VaultClient{c: c, gen: gen, cfg: cfg}
	switch {
	case cfg.Token != "":
		v.setToken(cfg.Token)
		v.watch(ctx)
	case cfg.RoleID != "":
		if err := v.login(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("keys: vault needs VAULT_TOKEN or VAULT_ROLE_ID and VAULT_SECRET_ID")
	}
	return v, nil
}

// Calls is how many requests the client has made (for benchmarks).
func (v *VaultClient) Calls() int64 { return v.calls.Load() }

// Close stops renewing the token.
func (v *VaultClient) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	if v.watcher != nil {
		v.watcher.Stop()
	}
}

func (v *VaultClient) login(ctx context.Context) error {
	v.calls.Add(1)
	s, err := v.c.Logical().WriteWithContext(ctx, "auth/"+v.cfg.AppRoleMount+"/login", map[string]any{"role_id": v.cfg.RoleID, "secret_id": v.cfg.SecretID})
	if err != nil {
		return fmt.Errorf("%w: approle login: %v", ErrUnavailable, err)
	}
	if s == nil || s.Auth == nil {
		return fmt.Errorf("%w: approle login returned no token", ErrUnavailable)
	}
	v.setToken(s.Auth.ClientToken)
	v.cfg.Log.Info("vault: logged in with AppRole", "renewable", s.Auth.Renewable, "ttl_s", s.Auth.LeaseDuration)
	v.watchSecret(s)
	return nil
}

// watch renews a static token if it is renewable.
func (v *VaultClient) watch(ctx context.Context) {
	v.calls.Add(1)
	s, err := v.c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil || s == nil {
		return
	}
	if renewable, _ := s.TokenIsRenewable(); !renewable {
		return
	}
	ttl, _ := s.TokenTTL()
	v.watchSecret(&vault.Secret{Auth: &vault.SecretAuth{ClientToken: v.c.Token(), Renewable: true, LeaseDuration: int(ttl.Seconds())}})
}

func (v *VaultClient) watchSecret(s *vault.Secret) {
	if s.Auth == nil || !s.Auth.Renewable {
		return
	}
	w, err := v.c.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: s})
	if err != nil {
		return
	}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	if v.watcher != nil {
		v.watcher.Stop()
	}
	v.watcher = w
	v.mu.Unlock()
	go w.Start()
	go func() {
		for {
			select {
			case err := <-w.DoneCh():
				if err != nil {
					v.cfg.Log.Warn("vault: token renewal ended", "err", err)
				}
				return
			case <-w.RenewCh():
				v.calls.Add(1)
			}
		}
	}()
}

// call runs one request, logging in again once when an AppRole token is
// refused, and wraps failures to reach Vault as ErrUnavailable.
func (v *VaultClient) call(ctx context.Context, fn func() (*vault.Secret, error)) (*vault.Secret, error) {
	v.calls.Add(1)
	s, err := fn()
	if err == nil {
		return s, nil
	}
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && v.cfg.RoleID != "" {
		v.cfg.Log.Warn("vault: token refused; logging in again")
		if lerr := v.login(ctx); lerr != nil {
			return nil, lerr
		}
		v.calls.Add(1)
		s, err = fn()
		if err == nil {
			return s, nil
		}
	}
	return nil, classify(err)
}

// classify separates "Vault cannot serve us now" (ErrUnavailable) from a
// refusal of the request itself (a bad ciphertext, say).
func classify(err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusBadRequest, re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("keys: vault refused the request: %s", strings.Join(re.Errors, "; "))
		default: // 403 (token), 429, 5xx (sealed, standby)
			return fmt.Errorf("%w: HTTP %d: %s", ErrUnavailable, re.StatusCode, strings.Join(re.Errors, "; "))
		}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func (v *VaultClient) read(ctx context.Context, path string) (*vault.Secret, error) {
	return v.call(ctx, func() (*vault.Secret, error) { return v.c.Logical().ReadWithContext(ctx, path) })
}

func (v *VaultClient) write(ctx context.Context, path string, data map[string]any) (*vault.Secret, error) {
	return v.call(ctx, func() (*vault.Secret, error) { return v.c.Logical().WriteWithContext(ctx, path, data) })
}

// keygenTimeout bounds the calls that make Vault generate an RSA-4096 key
// (creating or rotating a transit key, the first read of the wrapping
// key): generation takes a second or two on a quiet machine but has a long
// tail, and many more on a loaded one, where the 10 s of other calls
// would fail a start or a rotation that was only slow. ctx still bounds it.
const keygenTimeout = 60 * time.Second

// generating reads or writes like read and write, under keygenTimeout.
func (v *VaultClient) generating(ctx context.Context, path string, data map[string]any) (*vault.Secret, error) {
	return v.call(ctx, func() (*vault.Secret, error) {
		if data == nil {
			return v.gen.Logical().ReadWithContext(ctx, path)
		}
		return v.gen.Logical().WriteWithContext(ctx, path, data)
	})
}

// setToken gives both clients the token.
func (v *VaultClient) setToken(token string) {
	v.c.SetToken(token)
	v.gen.SetToken(token)
}

// Health reports why Vault cannot serve the node, or nil.
func (v *VaultClient) Health(ctx context.Context) error {
	v.calls.Add(1)
	h, err := v.c.Sys().HealthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if h.Sealed {
		return fmt.Errorf("%w: vault is sealed", ErrUnavailable)
	}
	if !h.Initialized {
		return fmt.Errorf("%w: vault is not initialised", ErrUnavailable)
	}
	if _, err := v.c.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		return fmt.Errorf("%w: the node's token is refused: %v", ErrUnavailable, err)
	}
	return nil
}
