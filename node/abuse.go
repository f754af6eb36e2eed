package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
	"github.com/fednode/fednode/ratelimit"
)

// banStore is what bans need from a store.
type banStore interface {
	SetBan(ctx context.Context, b fednode.Ban) error
	Ban(ctx context.Context, key string) (fednode.Ban, error)
	DeleteBan(ctx context.Context, key string) error
	Bans(ctx context.Context) ([]fednode.Ban, error)
	PruneBans(ctx context.Context, since time.Time) (int, error)
}

// Kinds of abuse that count toward a ban.
const (
	violationRate = "rate_limit_violations"
	violationAuth = "authentication_failures"
	violationSig  = "federation_signature_failures"
)

// abuse applies rate limits and bans. Bans are checked from an in-memory
// copy of the ban list, refreshed from the store every few seconds and at
// once when any replica changes it; if the store cannot be read the copy is
// kept, so a ban never lifts because Redis went away or restarted.
type abuse struct {
	cfg     Config
	limiter ratelimit.Limiter // shared by the replicas (Redis) or in process
	local   ratelimit.Limiter // this process's own, for localClasses
	store   banStore
	ips     *clientip.Resolver
	now     func() time.Time
	audit   *slog.Logger
	log     *slog.Logger
	m       *metrics
	publish func(ctx context.Context, topic string, payload []string) error

	mu   sync.RWMutex
	bans map[string]fednode.Ban
}

// banRepeatWindow: a key banned again within this time of its last ban
// ending gets the next, longer ban.
const banRepeatWindow = 24 * time.Hour

func (a *abuse) reload(ctx context.Context) error {
	all, err := a.store.Bans(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]fednode.Ban, len(all))
	for _, b := range all {
		m[b.Key] = b
	}
	a.mu.Lock()
	a.bans = m
	a.mu.Unlock()
	return nil
}

// banned returns the ban in force for key, if any.
func (a *abuse) banned(key string) (fednode.Ban, bool) {
	a.mu.RLock()
	b, ok := a.bans[key]
	a.mu.RUnlock()
	return b, ok && b.Active(a.now())
}

// decide asks the limiter for one event of a class and client key. The
// error is the refusal to send: 429 rate_limited, or 503 when the shared
// limiter is down and the node fails closed.
func (a *abuse) decide(ctx context.Context, class, key string) (ratelimit.Decision, error) {
	rule := a.cfg.Rule(class)
	limiter := a.limiter
	if localClasses[class] {
		limiter = a.local
	}
	d, err := limiter.Allow(ctx, class+":"+key, rule)
	switch {
	case err != nil:
		a.m.limits.WithLabelValues(class, "unavailable").Inc()
		return d, &fednode.Error{Code: fednode.EUnavailable, Message: "rate limiting is unavailable; try again shortly", RetryAfter: max(1, int(math.Ceil(d.RetryAfter.Seconds()))), Err: err}
	case !d.Allowed:
		a.m.limits.WithLabelValues(class, "limited").Inc()
		return d, &fednode.Error{Code: fednode.ERateLimited, Message: fmt.Sprintf("too many requests; at most %d per %s", rule.Limit, rule.Window), RetryAfter: max(1, int(math.Ceil(d.RetryAfter.Seconds())))}
	}
	a.m.limits.WithLabelValues(class, "allowed").Inc()
	return d, nil
}

// charge decides one event of a class for key, counting a refusal toward a
// ban of the client it came from.
func (a *abuse) charge(ctx context.Context, class, key, client string) (ratelimit.Decision, error) {
	d, err := a.decide(ctx, class, key)
	if fednode.ErrorCode(err) == fednode.ERateLimited {
		a.violation(ctx, violationRate, client)
	}
	return d, err
}

// limit charges the request's client and writes the RateLimit headers.
func (a *abuse) limit(w http.ResponseWriter, r *http.Request, class, key string) error {
	d, err := a.charge(r.Context(), class, key, clientFromContext(r.Context()))
	if d.Limit > 0 {
		rule := a.cfg.Rule(class)
		h := w.Header()
		h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=%d", rule.Limit, int(rule.Window.Seconds())))
		h.Set("RateLimit", fmt.Sprintf("limit=%d, remaining=%d, reset=%d", d.Limit, d.Remaining, int(math.Ceil(d.Reset.Seconds()))))
	}
	return err
}

// violation counts one act of abuse by a client key and bans it when the
// count in BAN_WINDOW reaches the threshold of its kind.
func (a *abuse) violation(ctx context.Context, kind, key string) {
	threshold := map[string]int{violationRate: a.cfg.BanAfterViolations, violationAuth: a.cfg.BanAfterAuthFailures, violationSig: a.cfg.BanAfterSigFailures}[kind]
	d, err := a.limiter.Allow(ctx, "abuse:"+kind+":"+key, ratelimit.Rule{Limit: threshold, Window: a.cfg.BanWindow})
	if err != nil {
		a.log.Warn("abuse: cannot count a violation", "kind", kind, "err", err)
		return
	}
	if d.Allowed && d.Remaining > 0 {
		return
	}
	if _, already := a.banned(key); already {
		return
	}
	if _, err := a.ban(ctx, key, kind, 0, "automatic"); err != nil {
		a.log.Error("abuse: ban", "key", key, "err", err)
	}
}

// ban bans key. A zero duration means automatic escalation: BAN_DURATION,
// doubled for each ban that followed the previous one within a day, capped
// at BAN_MAX_DURATION.
func (a *abuse) ban(ctx context.Context, key, reason string, d time.Duration, by string) (fednode.Ban, error) {
	now := a.now()
	level := 1
	if prev, err := a.store.Ban(ctx, key); err == nil && now.Sub(prev.Until) < banRepeatWindow {
		level = prev.Level + 1
	} else if err != nil && !errors.Is(err, fednode.ErrNotFound) {
		return fednode.Ban{}, err
	}
	if d == 0 {
		d = a.cfg.BanDuration
		for i := 1; i < level && d < a.cfg.BanMaxDuration; i++ {
			d *= 2
		}
		d = min(d, a.cfg.BanMaxDuration)
	}
	b := fednode.Ban{Key: key, Until: now.Add(d).UTC(), Reason: reason, Level: level, CreatedAt: now.UTC()}
	if err := a.store.SetBan(ctx, b); err != nil {
		return fednode.Ban{}, err
	}
	a.mu.Lock()
	a.bans[key] = b
	a.mu.Unlock()
	if by == "automatic" {
		a.m.bans.WithLabelValues(reason).Inc() // one of the violation kinds
	} else {
		a.m.bans.WithLabelValues("manual").Inc() // an admin's reason is free text: not a label
	}
	a.audit.WarnContext(ctx, "ban.added", "key", key, "reason", reason, "level", level, "until", b.Until, "by", by)
	a.publish(ctx, TopicBans, nil)
	return b, nil
}

// unban lifts a ban.
func (a *abuse) unban(ctx context.Context, key, by string) error {
	if err := a.store.DeleteBan(ctx, key); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.bans, key)
	a.mu.Unlock()
	a.audit.WarnContext(ctx, "ban.lifted", "key", key, "by", by)
	a.publish(ctx, TopicBans, nil)
	return nil
}

// refuseBanned answers a banned client: 403 before any other work.
func (a *abuse) refuseBanned(w http.ResponseWriter, r *http.Request, log *slog.Logger, b fednode.Ban) {
	a.m.banned.Inc()
	secs := int(math.Ceil(b.Until.Sub(a.now()).Seconds()))
	writeError(w, r, log, &fednode.Error{Code: fednode.EBanned, RetryAfter: secs,
		Message: "this address is banned until " + b.Until.UTC().Format(time.RFC3339) + " (" + strconv.Itoa(secs) + " s)"})
}

type clientKey struct{}

func newContextWithClient(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, clientKey{}, key)
}

// clientFromContext is the client key (IP, or IPv6 /64) the request came from.
func clientFromContext(ctx context.Context) string {
	k, _ := ctx.Value(clientKey{}).(string)
	return k
}
