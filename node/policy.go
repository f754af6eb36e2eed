package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/fednode/fednode"
)

// policyKey is where an operator's run-time federation policy is kept.
const policyKey = "federation_policy"

// Policy is who this node federates with: in "open" mode everyone not on the
// blocklist, in "allowlist" mode only those on the allowlist and not on the
// blocklist.
type Policy struct {
	Mode      string   `json:"mode" strictjson:"required"`
	Allowlist []string `json:"allowlist"`
	Blocklist []string `json:"blocklist"`
}

func (p Policy) validate() error {
	if p.Mode != "open" && p.Mode != "allowlist" {
		return fednode.FieldError(fednode.EInvalid, "mode", "mode must be open or allowlist")
	}
	for field, l := range map[string][]string{"allowlist": p.Allowlist, "blocklist": p.Blocklist} {
		for _, d := range l {
			if err := checkPeerDomain(field, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// allows reports whether the node federates with domain under p.
func (p Policy) allows(domain string) bool {
	if slices.Contains(p.Blocklist, domain) {
		return false
	}
	return p.Mode == "open" || slices.Contains(p.Allowlist, domain)
}

type metaStore interface {
	Meta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
}

// federationPolicy holds the policy in force. It starts from the
// configuration; an operator's change through the admin API takes effect at
// once and is kept in the store, so it survives restarts until reset.
type federationPolicy struct {
	store    metaStore
	fromConf Policy

	mu  sync.RWMutex
	cur Policy
}

func newFederationPolicy(ctx context.Context, store metaStore, cfg Config) (*federationPolicy, error) {
	p := &federationPolicy{store: store, fromConf: Policy{Mode: cfg.FederationMode, Allowlist: nonNil(cfg.FederationAllowlist), Blocklist: nonNil(cfg.FederationBlocklist)}}
	p.cur = p.fromConf
	b, err := store.Meta(ctx, policyKey)
	switch {
	case errors.Is(err, fednode.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("federation policy: %w", err)
	default:
		var saved Policy
		if err := json.Unmarshal(b, &saved); err != nil || saved.validate() != nil {
			return nil, fmt.Errorf("federation policy in the store is unreadable: %v", err)
		}
		p.cur = saved
	}
	return p, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (p *federationPolicy) Allowed(domain string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur.allows(domain)
}

func (p *federationPolicy) get() Policy {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

// set replaces the policy (reset: back to the configuration's).
func (p *federationPolicy) set(ctx context.Context, np Policy, reset bool) (Policy, error) {
	if reset {
		np = p.fromConf
	}
	np.Allowlist, np.Blocklist = nonNil(np.Allowlist), nonNil(np.Blocklist)
	if err := np.validate(); err != nil {
		return Policy{}, err
	}
	b, _ := json.Marshal(np)
	if err := p.store.SetMeta(ctx, policyKey, b); err != nil {
		return Policy{}, fmt.Errorf("federation policy: %w", err)
	}
	p.mu.Lock()
	p.cur = np
	p.mu.Unlock()
	return np, nil
}

// checkPeerDomain refuses a peer domain an admin names (in field) unless it
// is already in canonical form: lower case, with its port if any, so that it
// matches the domains the node stores and compares.
func checkPeerDomain(field, d string) error {
	if cd, err := fednode.ParseDomain(d); err != nil || cd != d {
		return fednode.FieldError(fednode.EInvalid, field, "%q is not a lower-case node domain", d)
	}
	return nil
}
