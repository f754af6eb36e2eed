package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsListener serves /metrics on METRICS_ADDR, apart from the API.
type metricsListener struct {
	ln   net.Listener
	http *http.Server
	log  *slog.Logger
}

func listenMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*metricsListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("METRICS_ADDR: listen: %w", err)
	}
	return &metricsListener{ln: ln, log: log, http: newHTTPServer(ctx, h, log)}, nil
}

func (m *metricsListener) serve(errs chan<- error) {
	m.log.Info("metrics listening", "addr", m.ln.Addr().String())
	go func() {
		if err := m.http.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errs <- fmt.Errorf("metrics listener: %w", err):
			default:
			}
		}
	}()
}

func (m *metricsListener) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.http.Shutdown(ctx)
}

// MetricsURL is the base URL of the METRICS_ADDR listener, or "" without
// one.
func (d *Daemon) MetricsURL() string {
	if d.metrics == nil {
		return ""
	}
	return "http://" + d.metrics.ln.Addr().String()
}

// redisLogger routes go-redis's own messages (a pool that cannot dial, a
// connection dropped with unread data) into the JSON log at warn, tagged
// component=go-redis, instead of go-redis's plain lines on standard error.
// go-redis keeps one logger per process: the node opened last gets them.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "component", "go-redis", "detail", fmt.Sprintf(format, v...))
}
