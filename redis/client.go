package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options select the Redis deployment.
type Options struct {
	URL       string // redis:// or rediss:// (TLS); for a cluster, redis://h1:p1?addr=h2:p2&addr=h3:p3
	Password  string // overrides the URL's password when set
	Cluster   bool
	Namespace string // default "fednode"
	CAFile    string // PEM CAs to trust for rediss:// (default: the system's)
	// Log receives each step of a schema upgrade at Open (schema.go). Nil
	// discards them.
	Log *slog.Logger
	// Sealer encrypts message content and tags at rest (atrest.go). The
	// daemon always sets it; nil stores them in clear (store unit tests).
	Sealer Sealer

	migrations []migration // tests only: the schema steps instead of migrations
}

// NewClient builds a client (single server or cluster) from options, with
// timeouts short enough that a dead Redis fails a request in seconds, not
// minutes.
func NewClient(opt Options) (goredis.UniversalClient, error) {
	return newClient(opt, 2*time.Second, 3)
}

// NewFastClient is NewClient for decisions that have a fallback (the rate
// limiter): a dead Redis is noticed in a few hundred milliseconds and never
// retried within a request.
func NewFastClient(opt Options) (goredis.UniversalClient, error) {
	return newClient(opt, 300*time.Millisecond, -1)
}

func newClient(opt Options, timeout time.Duration, retries int) (goredis.UniversalClient, error) {
	if opt.Cluster {
		co, err := goredis.ParseClusterURL(opt.URL)
		if err != nil {
			return nil, fmt.Errorf("redis: REDIS_URL: %w", err)
		}
		if opt.Password != "" {
			co.Password = opt.Password
		}
		co.DialTimeout, co.ReadTimeout, co.WriteTimeout, co.PoolTimeout, co.MaxRetries = timeout, timeout, timeout, timeout+time.Second, retries
		if err := trust(co.TLSConfig, opt.CAFile); err != nil {
			return nil, err
		}
		return goredis.NewClusterClient(co), nil
	}
	o, err := goredis.ParseURL(opt.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: REDIS_URL: %w", err)
	}
	if opt.Password != "" {
		o.Password = opt.Password
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries = timeout, timeout, timeout, timeout+time.Second, retries
	if err := trust(o.TLSConfig, opt.CAFile); err != nil {
		return nil, err
	}
	return goredis.NewClient(o), nil
}

// trust makes a rediss:// connection verify the server against caFile.
func trust(cfg *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	if cfg == nil {
		return errors.New("redis: REDIS_TLS_CA_FILE needs a rediss:// URL")
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("redis: REDIS_TLS_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("redis: REDIS_TLS_CA_FILE %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	cfg.MinVersion = tls.VersionTLS12
	return nil
}
