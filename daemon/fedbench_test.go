package daemon_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/testkeys"
)

// BenchmarkCrossNodeDelivery measures messages per second from
// POST /api/messages on node A to pushed (so stored) at node B, over
// loopback, with 16 concurrent senders; beside it, in the same run, the
// per-message cryptographic costs of protocol v1 (one RSA-4096 OAEP
// unwrap per message at the receiver, one OAEP wrap per message and one
// PKCS#1 v1.5 signature per envelope at the sender, AES-256-GCM for the
// content):
//
//	go test ./node -run '^$' -bench 'CrossNode|PerMessageCrypto' -benchtime 2000x
func BenchmarkCrossNodeDelivery(b *testing.B) {
	a, bn := startNode(b, fastRetry), startNode(b, fastRetry)
	alice := a.user("alice")
	bob := bn.user("bob")
	to := "bob@" + bn.srv.Domain()
	live := dialWS(b, bn, bob, "")
	got := make(chan struct{}, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			live.SetReadDeadline(time.Now().Add(60 * time.Second))
			var m map[string]any
			if err := live.ReadJSON(&m); err != nil {
				b.Errorf("read after %d: %v", i, err)
				break
			}
		}
		got <- struct{}{}
	}()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + 15) / 16
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w * per; i < min((w+1)*per, b.N); i++ {
				a.send(alice, to, fmt.Sprintf("benchmark message %d", i))
			}
		}(w)
	}
	wg.Wait()
	<-got
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func BenchmarkPerMessageCrypto(b *testing.B) {
	priv := testkeys.Key(0)
	dk, _ := fcrypto.NewDataKey()
	wrapped, _ := fcrypto.WrapKey(&priv.PublicKey, dk)
	digest := sha256.Sum256([]byte("signing string"))
	pt := make([]byte, 1024)
	bind := fcrypto.Binding{Version: 1, MessageID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", From: "a@a", To: "b@b"}
	b.Run("rsa4096-oaep-unwrap", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fcrypto.DecryptOAEP(priv, wrapped)
		}
	})
	b.Run("rsa4096-oaep-wrap", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fcrypto.WrapKey(&priv.PublicKey, dk)
		}
	})
	b.Run("rsa4096-pkcs1v15-sign", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
		}
	})
	b.Run("aes256gcm-seal-1KiB", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fcrypto.Seal(dk, bind, pt)
		}
	})
}
