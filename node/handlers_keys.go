package node

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
)

// This file serves users' end-to-end keys (docs/API.md "End-to-end
// encryption"): a user publishes their public keys and a passphrase-sealed
// backup of the private ones (PUT, GET, DELETE /api/keys), and reads
// anyone's public keys (GET /api/users/{address}/keys): a local user's as
// a document this node signs, a remote user's as its home node signed it,
// verified here. Peers read this node's users' keys with a signed GET
// (GET /federation/users/{name}/keys). The node never sees a private key
// or a passphrase, and does no end-to-end cryptography itself.

// keysRequest is the body of PUT /api/keys. The keys are base64 strings
// rather than []byte so that a bad encoding is invalid_user_keys, as a bad
// key is.
type keysRequest struct {
	EncKey string             `json:"enc_key" strictjson:"required"`
	SigKey string             `json:"sig_key" strictjson:"required"`
	Backup *fednode.KeyBackup `json:"backup"`
}

// keysJSON is the body of GET /api/keys (and of PUT's answer).
type keysJSON struct {
	Document fednode.UserKeyDocument `json:"document"`
	Backup   *fednode.KeyBackup      `json:"backup"`
}

// reclassify gives a decoding refusal of a member under prefix (say a bad
// base64 in "backup.salt") the code of the rules that member is under.
func reclassify(err error, code string, prefixes ...string) error {
	var e *fednode.Error
	if !errors.As(err, &e) {
		return err
	}
	for _, p := range prefixes {
		if e.Field == p || strings.HasPrefix(e.Field, p+".") || strings.HasPrefix(e.Field, p+"[") {
			return &fednode.Error{Code: code, Field: e.Field, Message: e.Message}
		}
	}
	return err
}

// decodeKey reads one public key of PUT /api/keys.
func decodeKey(field, v string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || len(b) == 0 {
		return nil, fednode.FieldError(fednode.EInvalidUserKeys, field, "%s must be a public key as DER SubjectPublicKeyInfo in standard base64", field)
	}
	return b, nil
}

// parseKeys reads and checks the body of PUT /api/keys: the keys (DER
// SubjectPublicKeyInfo) and the backup, if any.
func parseKeys(w http.ResponseWriter, r *http.Request) (enc, sig []byte, backup *fednode.KeyBackup, err error) {
	var req keysRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, nil, nil, reclassify(err, fednode.EInvalidUserKeys, "enc_key", "sig_key", "backup")
	}
	if enc, err = decodeKey("enc_key", req.EncKey); err != nil {
		return nil, nil, nil, err
	}
	if sig, err = decodeKey("sig_key", req.SigKey); err != nil {
		return nil, nil, nil, err
	}
	if err := fednode.CheckPublicKeys(enc, sig); err != nil {
		return nil, nil, nil, err
	}
	if req.Backup != nil {
		if err := req.Backup.Validate(); err != nil {
			return nil, nil, nil, err
		}
	}
	return enc, sig, req.Backup, nil
}

func (s *Server) handlePutKeys(w http.ResponseWriter, r *http.Request) {
	enc, sig, backup, err := parseKeys(w, r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	name := p.Session.Username
	k := fednode.UserKeys{Enc: enc, Sig: sig, CreatedAt: s.now().UTC(), Backup: backup}
	old, err := s.store.UserKeys(r.Context(), name)
	switch {
	case err == nil && bytes.Equal(old.Enc, enc) && bytes.Equal(old.Sig, sig):
		k.CreatedAt = old.CreatedAt // the same keys (a new backup): no key change
	case err != nil && !errors.Is(err, fednode.ErrNotFound):
		writeError(w, r, s.log, err)
		return
	}
	if err := s.store.PutUserKeys(r.Context(), name, k); err != nil {
		if errors.Is(err, fednode.ErrNotFound) {
			err = fednode.Errorf(fednode.EUnauthorized, "the token is missing, invalid, expired or revoked") // deleted meanwhile
		}
		writeError(w, r, s.log, err)
		return
	}
	changed := old.Enc != nil && !k.CreatedAt.Equal(old.CreatedAt)
	s.audit.InfoContext(r.Context(), "user_keys.published", "user", name, "ip", clientIP(r),
		"enc_key_id", k.EncKeyID(), "sig_key_id", k.SigKeyID(), "replaced", changed, "backup", k.Backup != nil)
	s.writeOwnKeys(w, r, name, k)
}

func (s *Server) handleGetKeys(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	k, err := s.store.UserKeys(r.Context(), p.Session.Username)
	if errors.Is(err, fednode.ErrNotFound) {
		err = fednode.Errorf(fednode.ENotFound, "you have not published end-to-end keys")
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.writeOwnKeys(w, r, p.Session.Username, k)
}

// writeOwnKeys answers a user's own keys: the document and the backup.
func (s *Server) writeOwnKeys(w http.ResponseWriter, r *http.Request, name string, k fednode.UserKeys) {
	doc, err := s.localKeyDocument(r, name, k)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, keysJSON{Document: doc, Backup: k.Backup})
}

func (s *Server) handleDeleteKeys(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	if err := s.store.DeleteUserKeys(r.Context(), p.Session.Username); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.InfoContext(r.Context(), "user_keys.deleted", "user", p.Session.Username, "ip", clientIP(r))
	w.WriteHeader(http.StatusNoContent)
}

// localKeyDocument is the document of a local user's keys, signed by this
// node (or as it signed it a moment ago, see keyDocs).
func (s *Server) localKeyDocument(r *http.Request, name string, k fednode.UserKeys) (fednode.UserKeyDocument, error) {
	addr := fednode.Address{User: fednode.CanonicalUsername(name), Domain: s.cfg.NodeDomain}.String()
	now := s.now()
	if d, ok := s.keyDocs.get(addr, k, now); ok {
		return d, nil
	}
	d, err := federation.SignUserKeys(r.Context(), s.keyring, s.cfg.NodeDomain, addr, k)
	if err == nil {
		s.keyDocs.put(addr, k, d, now)
	}
	return d, err
}

// localUserKeys returns the keys of the local user name; ENotFound, with
// one message, whether there is no such user or it has no keys.
func (s *Server) localUserKeys(r *http.Request, name string) (fednode.UserKeys, error) {
	notFound := fednode.Errorf(fednode.ENotFound, "no such user, or no end-to-end keys published")
	if !fednode.ValidUsername(name) {
		return fednode.UserKeys{}, notFound
	}
	k, err := s.store.UserKeys(r.Context(), name)
	if errors.Is(err, fednode.ErrNotFound) {
		return k, notFound
	}
	return k, err
}

// handleUserKeys serves anyone's key document to a local user.
func (s *Server) handleUserKeys(w http.ResponseWriter, r *http.Request) {
	addr, err := fednode.ParseAddress(mux.Vars(r)["address"], s.cfg.NodeDomain)
	if err != nil {
		writeError(w, r, s.log, fednode.FieldError(fednode.ErrorCode(err), "address", "%s", fednode.ErrorMessage(err)))
		return
	}
	if addr.Domain == s.cfg.NodeDomain {
		s.writeLocalKeyDocument(w, r, addr.User)
		return
	}
	if !s.policy.Allowed(addr.Domain) {
		writeError(w, r, s.log, fednode.FieldError(fednode.ERemote, "address", "this node does not federate with %s", addr.Domain))
		return
	}
	doc, err := s.userKeys.Fetch(r.Context(), addr)
	if err != nil {
		switch fednode.ErrorCode(err) {
		case fednode.EPeerKeysInvalid:
			s.log.WarnContext(r.Context(), "peer user keys do not verify", "peer", addr.Domain, "address", addr.String(), "request_id", requestIDFromContext(r.Context()), "err", err)
		case fednode.EUnavailable:
			s.log.InfoContext(r.Context(), "peer user keys unavailable", "peer", addr.Domain, "request_id", requestIDFromContext(r.Context()), "err", err)
		}
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// handleFederationUserKeys serves a local user's key document to a peer
// node, which signs its GET as it signs deliveries.
func (s *Server) handleFederationUserKeys(w http.ResponseWriter, r *http.Request) {
	if _, err := s.inbox.AuthenticateGet(r.Context(), r, clientIP(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.writeLocalKeyDocument(w, r, mux.Vars(r)["name"])
}

// writeLocalKeyDocument answers the signed key document of the local user
// name, to a local user or to a peer.
func (s *Server) writeLocalKeyDocument(w http.ResponseWriter, r *http.Request, name string) {
	k, err := s.localUserKeys(r, name)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	doc, err := s.localKeyDocument(r, name, k)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}
