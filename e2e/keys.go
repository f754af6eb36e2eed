package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/strictjson"
)

// Keys are one user's private end-to-end keys: Enc decrypts data keys
// wrapped to the user, Sig signs the user's messages. They live on the
// user's devices only.
type Keys struct {
	Enc *rsa.PrivateKey
	Sig *ecdsa.PrivateKey
}

// PublicKeys are a user's public keys, with the DER SubjectPublicKeyInfo
// they were published as: key ids are taken from those exact bytes.
type PublicKeys struct {
	Enc     *rsa.PublicKey
	Sig     *ecdsa.PublicKey
	EncSPKI []byte
	SigSPKI []byte
}

// EncKeyID, SigKeyID and Fingerprint name the keys (fednode.KeyID,
// fednode.Fingerprint).
func (p *PublicKeys) EncKeyID() string    { return fednode.KeyID(p.EncSPKI) }
func (p *PublicKeys) SigKeyID() string    { return fednode.KeyID(p.SigSPKI) }
func (p *PublicKeys) Fingerprint() string { return fednode.Fingerprint(p.EncKeyID(), p.SigKeyID()) }

// GenerateKeys makes a new RSA-4096 encryption key (exponent 65537) and a
// new ECDSA P-256 signing key. RSA-4096 takes a second or more.
func GenerateKeys() (*Keys, error) {
	enc, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return nil, fmt.Errorf("e2e: generate the encryption key: %w", err)
	}
	sig, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("e2e: generate the signing key: %w", err)
	}
	return &Keys{Enc: enc, Sig: sig}, nil
}

// Public returns k's public keys as DER SubjectPublicKeyInfo.
func (k *Keys) Public() *PublicKeys {
	enc, err := x509.MarshalPKIXPublicKey(&k.Enc.PublicKey)
	if err != nil {
		panic("e2e: marshal an RSA public key: " + err.Error()) // cannot fail for a valid key
	}
	sig, err := x509.MarshalPKIXPublicKey(&k.Sig.PublicKey)
	if err != nil {
		panic("e2e: marshal an ECDSA public key: " + err.Error())
	}
	return &PublicKeys{Enc: &k.Enc.PublicKey, Sig: &k.Sig.PublicKey, EncSPKI: enc, SigSPKI: sig}
}

// ParsePublicKeys parses DER SubjectPublicKeyInfo keys, which must be an
// RSA-4096 encryption key and an ECDSA P-256 signing key
// (fednode.CheckPublicKeys).
func ParsePublicKeys(enc, sig []byte) (*PublicKeys, error) {
	if err := fednode.CheckPublicKeys(enc, sig); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadKeys, fednode.ErrorMessage(err))
	}
	e, _ := x509.ParsePKIXPublicKey(enc)
	s, _ := x509.ParsePKIXPublicKey(sig)
	return &PublicKeys{Enc: e.(*rsa.PublicKey), Sig: s.(*ecdsa.PublicKey), EncSPKI: enc, SigSPKI: sig}, nil
}

// VerifyDocument checks a user key document as a client receives it from
// its own node (fednode.UserKeyDocument.Check: the form, the ids and the
// fingerprint, and that it is address's) and returns its keys. The node
// signature is the node's business: a client trusts its own node for it
// and pins the fingerprint (TOFU).
func VerifyDocument(d *fednode.UserKeyDocument, address fednode.Address) (*PublicKeys, error) {
	if err := d.Check(address.String()); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadKeys, fednode.ErrorMessage(err))
	}
	return ParsePublicKeys(d.EncKey, d.SigKey)
}

// privateJSON is the backup plaintext, and fedctl's key file entry:
// PKCS#8 DER of each private key.
type privateJSON struct {
	Enc []byte `json:"enc" strictjson:"required"`
	Sig []byte `json:"sig" strictjson:"required"`
}

// MarshalPrivate encodes k as {"enc":B64(PKCS#8),"sig":B64(PKCS#8)}.
func MarshalPrivate(k *Keys) ([]byte, error) {
	enc, err := x509.MarshalPKCS8PrivateKey(k.Enc)
	if err != nil {
		return nil, fmt.Errorf("e2e: marshal the encryption key: %w", err)
	}
	sig, err := x509.MarshalPKCS8PrivateKey(k.Sig)
	if err != nil {
		return nil, fmt.Errorf("e2e: marshal the signing key: %w", err)
	}
	return json.Marshal(privateJSON{Enc: enc, Sig: sig})
}

// ParsePrivate is the inverse of MarshalPrivate. It requires the kinds
// of keys fednode uses (fednode.CheckPublicKeys).
func ParsePrivate(b []byte) (*Keys, error) {
	var p privateJSON
	if err := strictjson.Decode(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadKeys, fednode.ErrorMessage(err))
	}
	enc, err1 := x509.ParsePKCS8PrivateKey(p.Enc)
	sig, err2 := x509.ParsePKCS8PrivateKey(p.Sig)
	re, ok1 := enc.(*rsa.PrivateKey)
	se, ok2 := sig.(*ecdsa.PrivateKey)
	if err := errors.Join(err1, err2); err != nil || !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: the private keys are not PKCS#8 RSA and ECDSA keys", ErrBadKeys)
	}
	k := &Keys{Enc: re, Sig: se}
	pub := k.Public()
	if err := fednode.CheckPublicKeys(pub.EncSPKI, pub.SigSPKI); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadKeys, fednode.ErrorMessage(err))
	}
	return k, nil
}
