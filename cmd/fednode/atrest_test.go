package main_test

import (
	"strings"
	"testing"
)

// TestBinaryReencrypts: `fednode admin reencrypt` on a stopped node says
// how many messages it sealed again, and the node starts and serves them
// after; the backup holds the key file of messages at rest.
func TestBinaryReencrypts(t *testing.T) {
	n := newStoreNode(t)
	n.start()
	n.fillStore()
	n.stop()
	code, out := n.run("admin", "reencrypt")
	noCrash(t, out)
	if code != 0 || !strings.Contains(out, "re-encrypted") || strings.Contains(out, "re-encrypted 0 ") {
		t.Fatalf("reencrypt: exit %d\n%s", code, out)
	}
	n.start()
	n.p.login(t, "alice")
	n.stop()
}
