package keys

// Crypto summary: AES Key Wrap with Padding (RFC 5649, NIST SP 800-38F KWP).
//
// What it protects: a private key on its way into Vault Transit (BYOK
// import), which requires exactly this wrapping: the key material is wrapped
// under a fresh AES-256 key, and that key is wrapped with RSA-OAEP-SHA256 to
// Transit's wrapping key.
// Construction: the RFC 5649 alternative initial value A6 59 59 A6 followed
// by the 32-bit big-endian length, the input zero-padded to a multiple of 8
// bytes; a single AES block when the padded input is 8 bytes, otherwise the
// RFC 3394 wrapping process (6·n AES operations). Pinned by RFC 5649's
// section 6 vectors.

import (
	"crypto/aes"
	"encoding/binary"
	"errors"
)

var kwpIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// wrapKWP wraps plaintext under kek (16, 24 or 32 bytes).
func wrapKWP(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 || len(plaintext) > 1<<31 {
		return nil, errors.New("kwp: bad plaintext length")
	}
	padded := make([]byte, (len(plaintext)+7)/8*8)
	copy(padded, plaintext)
	var a [8]byte
	copy(a[:4], kwpIV[:])
	binary.BigEndian.PutUint32(a[4:], uint32(len(plaintext)))
	if len(padded) == 8 {
		out := make([]byte, 16)
		copy(out, a[:])
		copy(out[8:], padded)
		block.Encrypt(out, out)
		return out, nil
	}
	n := len(padded) / 8
	r := make([][8]byte, n)
	for i := range r {
		copy(r[i][:], padded[i*8:])
	}
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 0; i < n; i++ {
			copy(buf[:8], a[:])
			copy(buf[8:], r[i][:])
			block.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[i][:], buf[8:])
		}
	}
	out := make([]byte, 8+len(padded))
	copy(out, a[:])
	for i := range r {
		copy(out[8+i*8:], r[i][:])
	}
	return out, nil
}

// unwrapKWP is the inverse of wrapKWP, for tests (Vault does the unwrapping).
func unwrapKWP(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, errors.New("kwp: bad length")
	}
	var a [8]byte
	var plain []byte
	if len(wrapped) == 16 {
		var buf [16]byte
		block.Decrypt(buf[:], wrapped)
		copy(a[:], buf[:8])
		plain = append([]byte{}, buf[8:]...)
	} else {
		n := len(wrapped)/8 - 1
		copy(a[:], wrapped[:8])
		r := make([][8]byte, n)
		for i := range r {
			copy(r[i][:], wrapped[8+i*8:])
		}
		var buf [16]byte
		for j := 5; j >= 0; j-- {
			for i := n - 1; i >= 0; i-- {
				t := uint64(n*j + i + 1)
				binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(buf[8:], r[i][:])
				block.Decrypt(buf[:], buf[:])
				copy(a[:], buf[:8])
				copy(r[i][:], buf[8:])
			}
		}
		for i := range r {
			plain = append(plain, r[i][:]...)
		}
	}
	if [4]byte(a[:4]) != kwpIV {
		return nil, errors.New("kwp: integrity check failed")
	}
	n := int(binary.BigEndian.Uint32(a[4:]))
	if n > len(plain) || n <= len(plain)-8 {
		return nil, errors.New("kwp: bad length indicator")
	}
	for _, b := range plain[n:] {
		if b != 0 {
			return nil, errors.New("kwp: bad padding")
		}
	}
	return plain[:n], nil
}
