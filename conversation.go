package fednode

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Conversation is what a user's conversation index keeps of the people
// they exchange messages with: one entry per other party (a local user or a
// remote address), updated by the store in the same write that appends a
// message to the user's mailbox, so that listing conversations costs the
// same whatever the mailbox's size.
type Conversation struct {
	// With is the other party, canonical (see ConversationKey). A message
	// from a user to themselves is a conversation with themselves.
	With string
	// LastCursor is the mailbox cursor of the newest message of the
	// conversation; conversations are listed newest first by it.
	LastCursor  uint64
	LastAt      time.Time
	LastPreview string // the first PreviewChars characters of its content
	LastFromMe  bool   // the user sent the newest message
	LastE2E     bool   // the newest message is end-to-end encrypted (its preview is empty)
	// Unread counts the messages the user received (not sent) with a
	// cursor after the conversation's read mark.
	Unread int
}

// PreviewChars is how many characters of a message's content a
// conversation shows.
const PreviewChars = 80

// Preview is the first PreviewChars characters of content.
func Preview(content string) string {
	if utf8.RuneCountInString(content) <= PreviewChars {
		return content
	}
	n := 0
	for i := range content {
		if n == PreviewChars {
			return content[:i]
		}
		n++
	}
	return content
}

// ConversationKey is an address as a conversation names it: the user part
// canonical and the domain in lower case.
func ConversationKey(a Address) string {
	return CanonicalUsername(a.User) + "@" + strings.ToLower(a.Domain)
}

// ConversationOf says, for a message appended to the mailbox of the local
// user owner, whom the conversation is with and whether owner sent it.
// outgoing is set when the message is appended by AppendOutgoing (it is
// the sender's copy of a message to another node). Otherwise the owner sent
// it only if both parties are on one node (a local message) and the sender
// is the owner: a message between nodes that AppendMessage stores was
// received from another node.
func ConversationOf(m Message, owner string, outgoing bool) (with string, fromMe bool) {
	owner = CanonicalUsername(owner)
	fromMe = outgoing || (strings.EqualFold(m.From.Domain, m.To.Domain) && CanonicalUsername(m.From.User) == owner)
	if fromMe {
		return ConversationKey(m.To), true
	}
	return ConversationKey(m.From), false
}

// Block is one user's refusal of messages from one address or from every
// user of one node. Exactly one of Address and Domain is set, canonical
// (an address as ConversationKey gives it, a domain as ParseDomain does).
type Block struct {
	Username  string // the local user who blocks
	Address   string
	Domain    string
	CreatedAt time.Time
}

// RecipientRefusedMessage is the message of ERecipientRefused, locally and
// between nodes: it does not say that the sender is blocked.
const RecipientRefusedMessage = "the recipient does not accept messages from you"

// BlockKey is the key a store files b under for its user: "a:" and the
// address, or "d:" and the domain.
func (b Block) Key() string {
	if b.Address != "" {
		return "a:" + b.Address
	}
	return "d:" + b.Domain
}

// BlockKeys are the keys of the blocks that refuse a message from from.
func BlockKeys(from Address) [2]string {
	return [2]string{"a:" + ConversationKey(from), "d:" + strings.ToLower(from.Domain)}
}

// SentCopy guesses, for an index built from a mailbox written before
// conversations were kept (a schema upgrade), whether m in the mailbox of
// owner is the sender's copy of a message to another node, which
// ConversationOf cannot tell without knowing how it was appended. Its
// sender's user part is the owner and its recipient's is not; when both
// are the owner's name (bob@a to bob@b), a message still queued or failed
// is the sender's copy, and any other is taken as received.
func SentCopy(m Message, owner string) bool {
	if strings.EqualFold(m.From.Domain, m.To.Domain) {
		return false // ConversationOf knows a local message
	}
	owner = CanonicalUsername(owner)
	from, to := CanonicalUsername(m.From.User) == owner, CanonicalUsername(m.To.User) == owner
	if from && to {
		return m.Status == StatusQueued || m.Status == StatusFailed
	}
	return from
}
