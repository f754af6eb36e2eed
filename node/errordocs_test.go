package node

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestErrorCodesDocumented holds statusOf, the one place a code gets its
// HTTP status, equal to the documents clients read: every code has a row
// in docs/API.md's error table or docs/PROTOCOL.md's table of inbox
// refusals (2.4) with the same status, and every code those tables name
// is one the node can answer.
func TestErrorCodesDocumented(t *testing.T) {
	documented := map[string]map[int]bool{}
	rows := map[string]*regexp.Regexp{
		"../docs/API.md":      regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\| ([0-9]{3}) \\|"),
		"../docs/PROTOCOL.md": regexp.MustCompile("(?m)^\\| [^|]+ \\| `([a-z0-9_]+)`[^|]* \\| ([0-9]{3}) \\|$"),
	}
	for file, row := range rows {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		matches := row.FindAllStringSubmatch(string(b), -1)
		if len(matches) < 5 {
			t.Fatalf("%s: found %d rows of its error table; has its form changed?", file, len(matches))
		}
		for _, m := range matches {
			status, _ := strconv.Atoi(m[2])
			if documented[m[1]] == nil {
				documented[m[1]] = map[int]bool{}
			}
			documented[m[1]][status] = true
		}
	}
	for code, status := range statusOf {
		if !documented[code][status] {
			t.Errorf("code %s (HTTP %d) has no row with that status in docs/API.md or docs/PROTOCOL.md 2.4 (documented: %v)", code, status, documented[code])
		}
	}
	for code := range documented {
		if _, ok := statusOf[code]; !ok {
			t.Errorf("docs name the code %s, which the node never answers", code)
		}
	}
}
