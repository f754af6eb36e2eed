package federation

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/keys"
)

// inboxServer is a peer inbox that checks each delivery as a receiver
// would (the signature verifies with the sender's key, whose domain is the
// envelope's from_node; Host; Digest; a strict envelope) and then answers
// with answer. A delivery that fails a check is answered 599 and reported.
func inboxServer(t *testing.T, kr keys.Keyring, answer http.HandlerFunc) (*httptest.Server, *url.URL) {
	t.Helper()
	pubs, _ := kr.PublicKeys(context.Background())
	sig, _ := keys.CurrentKey(pubs, keys.UseSig)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p, err := ParseSignature(r.Header.Get("Signature"))
		var env Envelope
		if err == nil {
			err = VerifySignature(r, p, sig.Key)
		}
		if err == nil {
			env, err = DecodeEnvelope(body)
		}
		switch {
		case err != nil:
		case p.KeyID != KeyID(env.FromNode, sig.ID):
			err = errors.New("keyId " + p.KeyID + " is not the sender's")
		case r.Host != env.ToNode:
			err = errors.New("Host " + r.Host)
		case !DigestMatches(r.Header.Get("Digest"), body):
			err = errors.New("Digest")
		case r.Method != http.MethodPost || r.URL.Path != InboxPath:
			err = errors.New(r.Method + " " + r.URL.Path)
		}
		if err != nil {
			t.Errorf("inbox: the delivery does not check: %v", err)
			w.WriteHeader(599)
			return
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	inbox, _ := url.Parse(srv.URL + InboxPath)
	return srv, inbox
}

// sealedFor is an envelope of one message from a.example to domain.
func sealedFor(t *testing.T, domain string) Envelope {
	t.Helper()
	rcpt := keyringOf(t, 2, 5)
	pubs, _ := rcpt.PublicKeys(context.Background())
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	env, err := SealMessages("a.example", Recipient{Domain: domain, EncKeyID: KeyID(domain, enc.ID), EncKey: enc.Key},
		[]fednode.Message{{ID: fednode.NewID(time.Now()), From: fednode.Address{User: "alice", Domain: "a.example"},
			To: fednode.Address{User: "bob", Domain: domain}, Content: "hi", Tags: []string{}, CreatedAt: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func answerWith(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestDeliver(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	kr := keyringOf(t, 0, 1)
	client := NewHTTPClient(ClientOptions{AllowPrivate: true})
	refusal := func(code string) string { return `{"error":{"code":"` + code + `","message":"m"}}` }
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		want   *DeliveryError // nil: the answer is returned
	}{
		{"a 2xx answer is returned", answerWith(200, nil, `{"results":[{"id":"x","status":"accepted"}]}`), nil},
		{"a 202 answer is returned", answerWith(202, nil, `{"results":[{"id":"x","status":"accepted"}]}`), nil},
		{"a lenient 2xx answer is retried", answerWith(200, nil, `{"results":[],"extra":1}`),
			&DeliveryError{Status: 200, Temporary: true, Reason: "inbox answer: "}},
		{"a 2xx answer over the cap is retried", answerWith(200, nil, `{"results":[`+strings.Repeat(" ", MaxResponseBytes)+`]}`),
			&DeliveryError{Status: 200, Temporary: true, Reason: "answer: "}},
		{"a redirect is retried, never followed", answerWith(302, map[string]string{"Location": "http://169.254.169.254/"}, ""),
			&DeliveryError{Status: 302, Temporary: true, Reason: "HTTP 302 "}},
		{"401 is retried", answerWith(401, nil, refusal(fednode.ESigInvalid)),
			&DeliveryError{Status: 401, Code: fednode.ESigInvalid, Temporary: true, Reason: "HTTP 401 " + fednode.ESigInvalid}},
		{"408 is retried", answerWith(408, nil, ""), &DeliveryError{Status: 408, Temporary: true, Reason: "HTTP 408 "}},
		{"429 is retried after Retry-After seconds", answerWith(429, map[string]string{"Retry-After": "7"}, refusal(fednode.ERateLimited)),
			&DeliveryError{Status: 429, Code: fednode.ERateLimited, RetryAfter: 7 * time.Second, Temporary: true, Reason: "HTTP 429 " + fednode.ERateLimited}},
		{"503 is retried after a Retry-After date", answerWith(503, map[string]string{"Retry-After": now.Add(time.Hour).UTC().Format(http.TimeFormat)}, refusal(fednode.EUnavailable)),
			&DeliveryError{Status: 503, Code: fednode.EUnavailable, RetryAfter: time.Hour - time.Duration(now.Nanosecond()), Temporary: true, Reason: "HTTP 503 " + fednode.EUnavailable}},
		{"a 403 ban is retried", answerWith(403, map[string]string{"Retry-After": "60"}, refusal(fednode.EBanned)),
			&DeliveryError{Status: 403, Code: fednode.EBanned, RetryAfter: time.Minute, Temporary: true, Reason: "HTTP 403 " + fednode.EBanned}},
		{"any other 403 is for good", answerWith(403, nil, refusal(fednode.EPeerBlocked)),
			&DeliveryError{Status: 403, Code: fednode.EPeerBlocked, Reason: "HTTP 403 " + fednode.EPeerBlocked}},
		{"a 403 whose body is not strict is for good", answerWith(403, nil, `{"error":{"code":"banned","Code":"x","message":"m"}}`),
			&DeliveryError{Status: 403, Reason: "HTTP 403 "}},
		{"400 is for good", answerWith(400, nil, refusal(fednode.EEnvelope)),
			&DeliveryError{Status: 400, Code: fednode.EEnvelope, Reason: "HTTP 400 " + fednode.EEnvelope}},
		{"421 is for good", answerWith(421, nil, refusal(fednode.EWrongNode)),
			&DeliveryError{Status: 421, Code: fednode.EWrongNode, Reason: "HTTP 421 " + fednode.EWrongNode}},
		{"413 is for good", answerWith(413, nil, ""), &DeliveryError{Status: 413, Reason: "HTTP 413 "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, inbox := inboxServer(t, kr, tc.answer)
			a, err := Deliver(context.Background(), client, kr, inbox, sealedFor(t, srv.Listener.Addr().String()), clock)
			if tc.want == nil {
				if err != nil || len(a.Results) != 1 || a.Results[0] != (Result{ID: "x", Status: StatusAccepted}) {
					t.Fatalf("%+v %v", a, err)
				}
				return
			}
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("%v is not a *DeliveryError", err)
			}
			if !strings.HasPrefix(de.Reason, tc.want.Reason) {
				t.Errorf("Reason %q, want %q…", de.Reason, tc.want.Reason)
			}
			got := *de
			got.Reason, got.Err = "", nil
			want := *tc.want
			want.Reason = ""
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if !strings.HasPrefix(err.Error(), "federation: deliver: ") {
				t.Errorf("the error does not name the operation: %q", err)
			}
		})
	}
}

// TestDeliverWithoutAnswer: no answer (the peer is down) is retried, and an
// error of the signing keyring reaches the caller through errors.Is.
func TestDeliverWithoutAnswer(t *testing.T) {
	kr := keyringOf(t, 0, 1)
	srv, inbox := inboxServer(t, kr, answerWith(200, nil, `{"results":[]}`))
	env := sealedFor(t, srv.Listener.Addr().String())
	srv.Close()
	_, err := Deliver(context.Background(), NewHTTPClient(ClientOptions{AllowPrivate: true}), kr, inbox, env, time.Now)
	var de *DeliveryError
	if !errors.As(err, &de) || de.Status != 0 || !de.Temporary || !strings.HasPrefix(de.Reason, "post: ") {
		t.Fatalf("a peer that is down: %+v", err)
	}
	down := keyringFunc{sign: func() error { return keys.ErrUnavailable }}
	_, err = Deliver(context.Background(), http.DefaultClient, down, inbox, env, time.Now)
	if !errors.As(err, &de) || de.Status != 0 || !de.Temporary || !errors.Is(err, keys.ErrUnavailable) || !strings.HasPrefix(de.Reason, "sign: ") {
		t.Fatalf("a keyring that is down: %+v", err)
	}
}

// keyringFunc is a keyring whose Sign fails with sign's error.
type keyringFunc struct {
	keys.Keyring
	sign func() error
}

func (k keyringFunc) Sign(context.Context, []byte) (string, []byte, error) { return "", nil, k.sign() }

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   bool
	}{
		{301, "", true}, {302, "", true}, {307, "", true}, {308, "", true},
		{401, fednode.ESigInvalid, true}, {401, fednode.EKeyUnavailable, true}, {408, "", true}, {429, fednode.ERateLimited, true},
		{500, "", true}, {502, "", true}, {503, fednode.EUnavailable, true}, {504, "", true},
		{403, fednode.EBanned, true}, {403, fednode.EPeerBlocked, false}, {403, "", false},
		{400, fednode.EEnvelope, false}, {400, fednode.EBanned, false}, {404, "", false}, {405, "", false},
		{413, fednode.EBodyTooLarge, false}, {421, fednode.EWrongHost, false}, {422, "", false},
	} {
		if got := temporary(tc.status, tc.code); got != tc.want {
			t.Errorf("HTTP %d %s: temporary = %v", tc.status, tc.code, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if d := retryAfter("120", now); d != 2*time.Minute {
		t.Fatalf("seconds: %v", d)
	}
	if d := retryAfter(now.Add(time.Hour).Format(http.TimeFormat), now); d != time.Hour {
		t.Fatalf("HTTP date: %v", d)
	}
	for _, v := range []string{"", "-5", "soon", now.Add(-time.Hour).Format(http.TimeFormat)} {
		if d := retryAfter(v, now); d != 0 {
			t.Fatalf("%q gave %v", v, d)
		}
	}
}

// TestRetryAfterCap: no Retry-After asks for more than MaxRetryAfter, not
// even one too large for a Duration (which once wrapped to a negative wait).
func TestRetryAfterCap(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"86400", "86401", "9223372037", "99999999999999999999999", now.Add(48 * time.Hour).Format(http.TimeFormat), "Fri, 31 Dec 9999 23:59:59 GMT"} {
		if d := retryAfter(v, now); d != MaxRetryAfter {
			t.Errorf("%q gave %v, want %v", v, d, MaxRetryAfter)
		}
	}
	for v, want := range map[string]time.Duration{
		"0":                                0,
		"-99999999999999999999999":         0,
		"Thursday, 26-Nov-26 12:00:30 GMT": 30 * time.Second, // RFC 850
		"Thu Nov 26 12:00:30 2026":         30 * time.Second, // asctime
	} {
		if d := retryAfter(v, now); d != want {
			t.Errorf("%q gave %v, want %v", v, d, want)
		}
	}
}
