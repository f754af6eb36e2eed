package node

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/strictjson"
)

// maxBody is the cap on any JSON request body, applied before parsing. The
// largest legitimate body is a message: 10,000 code points of up to 4 bytes,
// or 6 when JSON-escaped, plus tags and the address; or an end-to-end
// encrypted one: a 64 KiB ciphertext and 4 wrapped keys in base64 (about
// 91 KiB, fednode.E2E).
const maxBody = 96 << 10

// decodeBody reads one JSON object from r into dst (a pointer to a struct
// with json tags; fields tagged strictjson:"required" must be there) and refuses,
// naming the field where there is one: a body over the cap, a content type
// other than JSON, and whatever strictjson.Decode refuses.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fednode.Errorf(fednode.EUnsupported, "the body must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fednode.Errorf(fednode.EBodyTooLarge, "the body must be at most %d bytes", maxBody)
		}
		return fmt.Errorf("read body: %w", err)
	}
	return strictjson.Decode(body, dst)
}
