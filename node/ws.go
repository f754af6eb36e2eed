package node

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
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
	defer s.bg.Done()
	c := &liveClient{user: sess.Username, session: sess.ID, wake: make(chan struct{}, 1), kick: make(chan string, 1)}
	s.hub.add(c) // before reading the store, so no wake is missed
	defer s.hub.remove(c)
	if r.URL.Query().Get("after") == "" {
		if after, err = s.messages.store.MailboxHead(r.Context(), sess.Username); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	} else {
		c.wake <- struct{}{} // replay the backlog first
	}

	up := websocket.Upgrader{
		Subprotocols:    []string{wsProtocol},
		CheckOrigin:     func(*http.Request) bool { return true }, // checked above, with our rules
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer conn.Close()
	boundSendBuffer(conn.NetConn(), s.log)
	s.serveSocket(conn, c, after)
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

// serveSocket pushes mailbox entries after cursor until the socket fails,
// the session is revoked or the server stops.
func (s *Server) serveSocket(conn *websocket.Conn, c *liveClient, cursor uint64) {
	ctx := s.bgCtx // Close cancels a store read a socket is stuck in
	conn.SetReadLimit(wsReadLimit)
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.WSPongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(s.cfg.WSPongWait))
	})
	readDone := make(chan struct{})
	go func() { // the reader: only control frames matter; others are counted
		defer close(readDone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
			if _, err := s.abuse.decide(ctx, ClassWSFrames, "user:"+c.user); err != nil {
				c.close(closeRateLimited)
				return
			}
		}
	}()
	ping := time.NewTicker(s.cfg.WSPingPeriod)
	defer ping.Stop()
	// With replicas a wake-up travels over Redis pub/sub, which may drop one;
	// a slow poll bounds the delay that costs. (Nothing is lost either way:
	// the socket reads the store after its cursor.)
	var poll <-chan time.Time
	if s.wsPoll {
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-readDone:
			return
		case reason := <-c.kick:
			code := websocket.ClosePolicyViolation
			if reason == closeGoingAway {
				code = websocket.CloseGoingAway
			}
			if reason == closeRateLimited {
				code = websocket.CloseTryAgainLater
			}
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
			return
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WSWriteWait)); err != nil {
				return
			}
		case <-poll:
			select {
			case c.wake <- struct{}{}:
			default:
			}
		case <-c.wake:
			for {
				entries, err := s.messages.store.Mailbox(ctx, c.user, cursor, wsBatch)
				if err != nil {
					s.log.Error("websocket: read mailbox", "user", c.user, "err", err)
					_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "try again"), time.Now().Add(time.Second))
					return
				}
				for _, e := range entries {
					_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WSWriteWait))
					if err := conn.WriteJSON(entryJSON(e)); err != nil {
						return // a stuck client is dropped; it reconnects with its cursor
					}
					cursor = e.Cursor
				}
				if len(entries) < wsBatch {
					break
				}
			}
		}
	}
}
