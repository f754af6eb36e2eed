package node

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fednode/fednode"
)

// WebSocket protocol.
//
// GET /api/ws upgrades to a socket on which the server pushes the user's new
// mailbox entries, one JSON message object per text frame (the object of
// GET /api/messages, with its "cursor"). The client sends nothing but
// control frames; anything else is read and ignored, up to wsReadLimit.
//
// Authentication happens before the upgrade, by either
//   - an "Authorization: Bearer <token>" header (non-browser clients), or
//   - the Sec-WebSocket-Protocol header, for browsers, which cannot set
//     headers on a WebSocket: offer the two subprotocols
//     "fednode.v1" and "bearer.<token>"; the server answers "fednode.v1"
//     and never echoes the token. The token never appears in the URL, so it
//     is not written to access logs or browser history.
//
// "?after=CURSOR" replays everything after that cursor before live
// delivery, so a client that reconnects with its last cursor loses nothing.
// Without it, delivery starts from now.
//
// The server pings every WSPingPeriod and closes a socket that has not
// answered within WSPongWait, or that cannot take a frame within
// WSWriteWait. A revoked session's sockets are closed with 1008 (policy
// violation); a shutdown closes with 1001 (going away).
const (
	wsProtocol       = "fednode.v1"
	wsBearerPrefix   = "bearer."
	wsReadLimit      = 4096
	wsBatch          = 100
	closeRevoked     = "session revoked"
	closeGoingAway   = "server shutting down"
	closeRateLimited = "too many frames"
	closeTryAgain    = "try again"
)

// wsToken finds the bearer token in the header or the subprotocol list.
func wsToken(r *http.Request) string {
	if t := bearerToken(r); t != "" {
		return t
	}
	for _, p := range websocket.Subprotocols(r) {
		if strings.HasPrefix(p, wsBearerPrefix) {
			return p[len(wsBearerPrefix):]
		}
	}
	return ""
}

// wsOriginAllowed: a request with no Origin is not from a browser; one with
// an Origin must be this node's own public origin or a listed one.
func (s *Server) wsOriginAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && strings.EqualFold(origin, u.Scheme+"://"+u.Host) {
		return true
	}
	return s.cfg.originAllowed(origin)
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.wsOriginAllowed(r.Header.Get("Origin")) {
		s.public(ClassAPIAnon, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, s.log, fednode.Errorf(fednode.EOrigin, "this origin is not in ALLOWED_ORIGINS"))
		}).ServeHTTP(w, r)
		return
	}
	sess, _, ok := s.authenticateLimited(w, r, wsToken(r), ClassWSConnect)
	if !ok {
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, r, s.log, fednode.Errorf(fednode.EInvalid, "this endpoint needs a WebSocket upgrade"))
		return
	}
	after, err := parseCursor(r.URL.Query().Get("after"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.bg.Add(1) // before the hijack, so Close cannot miss this socket
	c := &liveClient{user: sess.Username, session: sess.ID, s: s}
	s.hub.add(c) // before reading the store, so no wake is missed
	done := func() {
		s.hub.remove(c)
		s.bg.Done()
	}
	replay := r.URL.Query().Get("after") != ""
	if !replay {
		if after, err = s.messages.store.MailboxHead(r.Context(), sess.Username); err != nil {
			done()
			writeError(w, r, s.log, err)
			return
		}
	}
	conn, err := wsUpgrader.Upgrade(w, r, nil)
	if err != nil {
		done()
		return // Upgrade has answered the client
	}
	boundSendBuffer(conn.NetConn(), s.log)
	// The socket lives on in a fresh goroutine, whose stack starts small;
	// the handler's, grown by the request's middleware, ends here.
	go func() {
		defer done()
		c.serve(conn, after, replay)
	}()
}

// wsUpgrader: small read buffers (clients send only control frames) and
// write buffers from a shared pool, held only while a frame is written, so
// an idle socket keeps neither.
var wsUpgrader = websocket.Upgrader{
	Subprotocols:    []string{wsProtocol},
	CheckOrigin:     func(*http.Request) bool { return true }, // checked in handleWS, with our rules
	ReadBufferSize:  512,
	WriteBufferSize: 4096,
	WriteBufferPool: &sync.Pool{},
}

// wsSendBuffer is the kernel send buffer of a live socket. Left alone,
// Linux grows it by auto-tuning to megabytes for a client that never reads,
// until the write deadline drops the socket; fixed, a hostile reader costs
// this much (the kernel doubles it for bookkeeping). It holds several of the
// largest messages, so a client that reads keeps up.
const wsSendBuffer = 64 << 10

// boundSendBuffer fixes the send buffer of a socket's TCP connection, under
// TLS too.
func boundSendBuffer(c net.Conn, log *slog.Logger) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		if err := tcp.SetWriteBuffer(wsSendBuffer); err != nil {
			log.Warn("websocket: cannot bound the send buffer", "err", err)
		}
	}
}

// liveClient is one live socket. An idle socket costs one goroutine,
// blocked reading (clients send only control frames), and two
// timers (ping, and with replicas a poll). Writing happens in a goroutine
// that runs only while there is something to send: a wake starts it if it
// is not running, and it reads the mailbox after the socket's cursor until
// nothing new is left, so several wakes coalesce into one read and a slow
// client only delays itself.
type liveClient struct {
	user, session string
	s             *Server

	mu       sync.Mutex
	conn     *websocket.Conn // nil until upgraded
	cursor   uint64          // the last entry sent
	flushing bool            // a writer goroutine runs
	pending  bool            // woken while it ran, or before the upgrade
	mail     bool            // the mailbox may hold entries after the cursor
	closed   bool
	statuses []statusEvent // status events waiting to be sent, at most maxPendingStatuses
	why      string        // why it was closed before the upgrade finished
	timers   []*time.Timer
}

// wake asks the socket to send whatever its mailbox has after its cursor.
func (c *liveClient) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mail = true
	c.startLocked()
}

// startLocked starts the writer goroutine unless it runs (then it goes
// round once more) or the socket is not upgraded yet. c.mu is held.
func (c *liveClient) startLocked() {
	if c.closed {
		return
	}
	if c.flushing || c.conn == nil {
		c.pending = true
		return
	}
	c.flushing = true
	c.s.bg.Add(1) // the handler's own count is held, so this never races Wait
	go c.flush()
}

// maxPendingStatuses bounds the status events a socket holds unsent; past
// it the oldest are dropped (GET /api/messages/{id} still tells).
const maxPendingStatuses = 256

// pushStatus queues a status event for the socket and starts its writer,
// which sends it without reading the mailbox: a status changes no entry.
func (c *liveClient) pushStatus(ev statusEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.statuses) >= maxPendingStatuses {
		c.statuses = c.statuses[1:]
	}
	c.statuses = append(c.statuses, ev)
	c.startLocked()
}

// send writes one frame; a client that cannot take it is dropped (it
// reconnects with its cursor).
func (c *liveClient) send(v any) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.s.cfg.WSWriteWait))
	if err := c.conn.WriteJSON(v); err != nil {
		c.conn.Close()
		return false
	}
	return true
}

// flush sends the mailbox after the cursor when a wake asked for it, then
// the status events waiting, until nothing new is left.
func (c *liveClient) flush() {
	defer c.s.bg.Done()
	ctx := c.s.bgCtx // Close cancels a store read a socket is stuck in
	for {
		c.mu.Lock()
		mail := c.mail
		c.mail = false
		c.mu.Unlock()
		if mail {
			entries, err := c.s.messages.store.Mailbox(ctx, c.user, c.cursor, wsBatch)
			if err != nil {
				c.s.log.Error("websocket: read mailbox", "user", c.user, "err", err)
				c.close(closeTryAgain)
				return
			}
			for _, e := range entries {
				if !c.send(entryJSON(e)) {
					return
				}
				c.cursor = e.Cursor
			}
			if len(entries) == wsBatch {
				c.mu.Lock()
				c.mail = true
				c.mu.Unlock()
				continue
			}
		}
		c.mu.Lock()
		statuses := c.statuses
		c.statuses = nil
		c.mu.Unlock()
		for _, ev := range statuses {
			if !c.send(ev) {
				return
			}
		}
		c.mu.Lock()
		if c.pending && !c.closed {
			c.pending = false
			c.mu.Unlock()
			continue
		}
		c.flushing = false
		c.mu.Unlock()
		return
	}
}

// close tells the client why the server closes the socket, then closes it.
// It does not block its caller: the close frame may wait on a slow client.
func (c *liveClient) close(reason string) {
	c.mu.Lock()
	conn := c.conn
	if c.closed || conn == nil {
		if !c.closed {
			c.closed, c.why = true, reason // serve closes it once upgraded
		}
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	closeSocket(conn, reason)
}

// closeSocket sends the close frame for reason and closes conn, in a
// goroutine of its own, so the caller (the hub, under its lock) never waits
// on a slow client.
func closeSocket(conn *websocket.Conn, reason string) {
	go func() {
		sendClose(conn, reason)
		conn.Close()
	}()
}

// sendClose writes the close frame that says why the server closes.
func sendClose(conn *websocket.Conn, reason string) {
	code := websocket.ClosePolicyViolation
	switch reason {
	case closeGoingAway:
		code = websocket.CloseGoingAway
	case closeRateLimited, closeTryAgain:
		code = websocket.CloseTryAgainLater
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

// every runs fn every d until the socket closes.
func (c *liveClient) every(d time.Duration, fn func() bool) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		if fn() {
			c.mu.Lock()
			if !c.closed {
				t.Reset(d)
			}
			c.mu.Unlock()
		}
	})
	c.timers = append(c.timers, t)
}

// serve runs the socket on its goroutine: it starts the pings
// (and the poll), sends the backlog when asked to replay, and reads until
// the socket fails, the session is revoked or the server stops.
func (c *liveClient) serve(conn *websocket.Conn, cursor uint64, replay bool) {
	s := c.s
	conn.SetReadLimit(wsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.WSPongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(s.cfg.WSPongWait))
	})
	c.mu.Lock()
	if c.closed { // revoked or shut down while upgrading
		c.mu.Unlock()
		closeSocket(conn, c.why)
		return
	}
	c.conn, c.cursor = conn, cursor
	wakeNow := replay || c.pending
	c.pending = false
	c.every(s.cfg.WSPingPeriod, func() bool {
		if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WSWriteWait)); err != nil {
			conn.Close()
			return false
		}
		return true
	})
	if s.wsPoll {
		// With replicas a wake-up travels over Redis pub/sub, which may drop
		// one; a slow poll bounds the delay that costs. (Nothing is lost
		// either way: the socket reads the store after its cursor.)
		c.every(3*time.Second, func() bool { c.wake(); return true })
	}
	c.mu.Unlock()
	if wakeNow {
		c.wake()
	}
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
		if _, err := s.abuse.decide(s.bgCtx, ClassWSFrames, "user:"+c.user); err != nil {
			c.mu.Lock()
			c.closed = true
			c.mu.Unlock()
			sendClose(conn, closeRateLimited)
			break
		}
	}
	c.mu.Lock()
	c.closed = true
	for _, t := range c.timers {
		t.Stop()
	}
	c.mu.Unlock()
	conn.Close()
}
