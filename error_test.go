package fednode_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fednode/fednode"
)

// TestErrorCodeAndMessage: the code and safe message come from the first
// *Error in the chain, however wrapped; anything else is internal and its
// text is never shown.
func TestErrorCodeAndMessage(t *testing.T) {
	wrapped := fmt.Errorf("store: op: %w", fednode.FieldError(fednode.EInvalidTags, "tags", "too many"))
	if fednode.ErrorCode(wrapped) != fednode.EInvalidTags || fednode.ErrorMessage(wrapped) != "too many" {
		t.Fatalf("%q %q", fednode.ErrorCode(wrapped), fednode.ErrorMessage(wrapped))
	}
	plain := errors.New("bolt: page 7 at /var/lib/secret")
	if fednode.ErrorCode(plain) != fednode.EInternal || fednode.ErrorMessage(plain) == plain.Error() {
		t.Fatalf("%q %q", fednode.ErrorCode(plain), fednode.ErrorMessage(plain))
	}
	if !errors.Is(fmt.Errorf("redis: get: %w", fednode.ErrUnavailable), fednode.ErrUnavailable) {
		t.Fatal("ErrUnavailable must survive wrapping")
	}
}
