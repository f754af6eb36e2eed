package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/testkeys"
)

// refusedAs fails t unless err is an *fednode.Error whose code is one of
// codes and answers a 4xx status.
func refusedAs(t *testing.T, err error, codes ...string) {
	t.Helper()
	var e *fednode.Error
	if !errors.As(err, &e) {
		t.Fatalf("a refusal that is not an *fednode.Error (a 500): %v", err)
	}
	if st := statusOf[e.Code]; st < 400 || st > 499 {
		t.Fatalf("code %q answers %d, not a 4xx: %v", e.Code, st, err)
	}
	for _, c := range codes {
		if e.Code == c {
			return
		}
	}
	t.Fatalf("code %q is not one of this endpoint's documented %v: %v", e.Code, codes, err)
}

// bodyCodes are the refusals of any JSON body (docs/API.md "Errors").
var bodyCodes = []string{fednode.EInvalidJSON, fednode.EUnknownField, fednode.EMissingField, fednode.EInvalidEncoding, fednode.EBodyTooLarge}

func FuzzPutKeysBody(f *testing.F) {
	enc, _ := x509.MarshalPKIXPublicKey(&testkeys.Key(0).PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	weak, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	b64 := base64.StdEncoding.EncodeToString
	backup := `{"v":1,"kdf":"PBKDF2-HMAC-SHA256","iterations":600000,"salt":"` + b64(make([]byte, 16)) + `","nonce":"` + b64(make([]byte, 12)) + `","ciphertext":"` + b64(make([]byte, 40)) + `"}`
	for _, s := range []string{
		`{"enc_key":"` + b64(enc) + `","sig_key":"` + b64(sig) + `"}`,
		`{"enc_key":"` + b64(enc) + `","sig_key":"` + b64(sig) + `","backup":` + backup + `}`,
		`{"enc_key":"` + b64(enc) + `","sig_key":"` + b64(sig) + `","backup":{"v":1}}`,
		`{"enc_key":"` + b64(weak) + `","sig_key":"` + b64(sig) + `"}`,
		`{"enc_key":"` + b64(sig) + `","sig_key":"` + b64(enc) + `"}`,
		`{"enc_key":"!!","sig_key":""}`, `{"enc_key":1}`, `{}`, `[]`, `null`, ``, `{"enc_key":"a","x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("PUT", "/api/keys", strings.NewReader(string(body)))
		enc, sig, backup, err := parseKeys(httptest.NewRecorder(), r)
		if err != nil {
			refusedAs(t, err, append(bodyCodes, fednode.EInvalidUserKeys)...)
			return
		}
		if err := fednode.CheckPublicKeys(enc, sig); err != nil {
			t.Fatalf("accepted keys that do not check: %v", err)
		}
		if backup != nil {
			if err := backup.Validate(); err != nil {
				t.Fatalf("accepted a backup that does not validate: %v", err)
			}
		}
	})
}

func FuzzSendE2EBody(f *testing.F) {
	now := time.Now().UTC()
	id := fednode.NewID(now)
	good := fednode.E2E{V: 1, SigKey: fednode.KeyID([]byte("s")), Nonce: make([]byte, 12), Ciphertext: make([]byte, 40), Signature: make([]byte, 64),
		Keys: []fednode.E2EKey{{KeyID: fednode.KeyID([]byte("k")), Wrapped: make([]byte, fednode.E2EWrappedLen)}}}
	e, _ := json.Marshal(good)
	for _, s := range []string{
		`{"to":"bob","id":"` + id + `","e2e":` + string(e) + `}`,
		`{"to":"bob@b.example","id":"` + id + `","e2e":` + string(e) + `}`,
		`{"to":"bob","id":"` + id + `","content":"x","e2e":` + string(e) + `}`,
		`{"to":"bob","e2e":` + string(e) + `}`,
		`{"to":"bob","id":"` + id + `","e2e":{"v":1,"ciphertext":"???"}}`,
		`{"to":"bob","id":"` + id + `","e2e":{"keys":[{"key_id":1}]}}`,
		`{"to":"bob","content":"hi","tags":["a"]}`, `{"to":"bob","content":"hi","id":"x"}`, `{"to":""}`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/messages", strings.NewReader(string(body)))
		q, err := decodeSend(httptest.NewRecorder(), r)
		if err == nil {
			if q.E2E == nil {
				err = q.plain()
			} else {
				var to fednode.Address
				if to, err = q.checkE2E(now, "a.example"); err == nil {
					switch {
					case q.Content != nil || q.Tags != nil || q.ID == nil:
						t.Fatalf("accepted e2e beside content or tags, or without an id: %s", body)
					case fednode.CheckE2EID(*q.ID, now) != nil:
						t.Fatalf("accepted an id not made now: %q", *q.ID)
					case q.E2E.Validate() != nil:
						t.Fatalf("accepted an e2e that does not validate: %v", q.E2E.Validate())
					case to.User == "" || to.Domain == "":
						t.Fatalf("accepted an empty recipient: %+v", to)
					}
					return
				}
			}
		}
		if err != nil {
			refusedAs(t, err, append(bodyCodes, fednode.EInvalidE2E, fednode.EInvalidAddress, fednode.EInvalidUsername)...)
		}
	})
}
