// Package vectordoc keeps the test vectors published in docs/PROTOCOL.md
// equal to what the code computes: a test renders its vectors, and Check
// requires the document to hold exactly them between two markers, or
// rewrites them there when the test runs with -update.
package vectordoc

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Check requires the text of path from begin through end (both markers
// included) to be want, which must itself start with begin and end with
// end. With update it writes want there instead. It reports whether the
// caller should go on checking (false after an update).
func Check(t testing.TB, path, begin, end, want string, update bool, how string) bool {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start, stop := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if start < 0 || stop < start {
		t.Fatalf("%s has no vectors between the markers %q and %q", path, begin, end)
	}
	if update {
		out := append(append(append([]byte{}, doc[:start]...), want...), doc[stop+len(end):]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return false
	}
	if got := string(doc[start : stop+len(end)]); got != want {
		t.Fatalf("%s: the vectors differ from what the code computes; run %s -update and review the diff", path, how)
	}
	return true
}

// Wrap breaks s into lines of 64 characters, for hex and base64 blocks.
func Wrap(s string) string {
	var lines []string
	for len(s) > 64 {
		lines, s = append(lines, s[:64]), s[64:]
	}
	return strings.Join(append(lines, s), "\n")
}
