package node

import "sync"

// hub tells live sockets that their user's mailbox has grown, and closes the
// sockets of revoked sessions.
//
// It carries no messages: a woken socket reads its mailbox from the store
// after the last cursor it sent (see liveClient). So a publisher never blocks on a slow client, memory per client is
// constant, several wakes coalesce into one read, and a client that falls
// behind or reconnects catches up from the store with nothing lost.
type hub struct {
	mu      sync.Mutex
	clients map[string]map[*liveClient]struct{} // canonical username -> clients
}

func newHub() *hub { return &hub{clients: map[string]map[*liveClient]struct{}{}} }

func (h *hub) add(c *liveClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients[c.user] == nil {
		h.clients[c.user] = map[*liveClient]struct{}{}
	}
	h.clients[c.user][c] = struct{}{}
}

func (h *hub) remove(c *liveClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients[c.user], c)
	if len(h.clients[c.user]) == 0 {
		delete(h.clients, c.user)
	}
}

// notify wakes every socket of the named users.
func (h *hub) notify(users ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range users {
		for c := range h.clients[u] {
			c.wake()
		}
	}
}

// status hands a status event to every socket of user.
func (h *hub) status(user string, ev statusEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients[user] {
		c.pushStatus(ev)
	}
}

// closeSessions closes the sockets of the given sessions.
func (h *hub) closeSessions(ids []string) {
	if len(ids) == 0 {
		return
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cs := range h.clients {
		for c := range cs {
			if set[c.session] {
				c.close(closeRevoked)
			}
		}
	}
}

// closeAll closes every socket (at shutdown).
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cs := range h.clients {
		for c := range cs {
			c.close(closeGoingAway)
		}
	}
}

// count returns the number of live sockets (for tests and metrics).
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, cs := range h.clients {
		n += len(cs)
	}
	return n
}
