package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the file paths and PEM data of the test cluster's credentials.
// One CA signs the API server's serving certificate and the client
// certificates (it is also what ends up in every kube-root-ca.crt ConfigMap).
type pki struct {
	caPEM                  []byte
	caFile                 string
	servingCertFile        string
	servingKeyFile         string
	saKeyFile              string // private key: signs service-account tokens; its public half verifies them
	adminCertPEM, adminKey []byte
	// the in-process controllers' identity (own user name in the audit log)
	controllerCertPEM, controllerKey []byte
}

type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func sign(tmpl *x509.Certificate, pub crypto.PublicKey, parent *keyPair) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	}
	parentCert, parentKey := tmpl, crypto.Signer(nil)
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	if parentKey == nil {
		return nil, fmt.Errorf("no signing key")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// pkiFiles are the file names under the pki directory. ca.crt is written
// last, so that its presence means the others are complete.
var pkiFiles = struct{ ca, serving, servingKey, saKey, admin, adminKey, ctl, ctlKey string }{
	ca: "ca.crt", serving: "apiserver.crt", servingKey: "apiserver.key", saKey: "service-account.key",
	admin: "admin.crt", adminKey: "admin.key", ctl: "controllers.crt", ctlKey: "controllers.key",
}

// loadOrMakePKI reuses the credentials an earlier run left in dir (a
// restart with the same --data-dir: the same CA, client certificates and
// service-account signing key, so that clients and tokens made before the
// restart still work), or makes fresh ones.
func loadOrMakePKI(dir string, serviceIP net.IP) (*pki, error) {
	_, err := os.Stat(filepath.Join(dir, pkiFiles.ca))
	if err == nil {
		return loadPKI(dir)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return makePKI(dir, serviceIP)
}

func pkiPaths(dir string) *pki {
	return &pki{
		caFile:          filepath.Join(dir, pkiFiles.ca),
		servingCertFile: filepath.Join(dir, pkiFiles.serving),
		servingKeyFile:  filepath.Join(dir, pkiFiles.servingKey),
		saKeyFile:       filepath.Join(dir, pkiFiles.saKey),
	}
}

func loadPKI(dir string) (*pki, error) {
	p := pkiPaths(dir)
	for _, f := range []struct {
		name string
		to   *[]byte
	}{
		{pkiFiles.ca, &p.caPEM},
		{pkiFiles.admin, &p.adminCertPEM}, {pkiFiles.adminKey, &p.adminKey},
		{pkiFiles.ctl, &p.controllerCertPEM}, {pkiFiles.ctlKey, &p.controllerKey},
	} {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("reuse %s: %w", dir, err)
		}
		*f.to = data
	}
	return p, nil
}

// makePKI creates a fresh CA, serving cert, admin and controller client
// certs and service-account signing key under dir.
func makePKI(dir string, serviceIP net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "nspool-test-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	// self-signed: sign with its own key
	caCert, err := sign(caTmpl, caKey.Public(), &keyPair{cert: caTmpl, key: caKey})
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	ca := &keyPair{cert: caCert, key: caKey}

	servingKey, err := newKey()
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	if serviceIP != nil {
		ips = append(ips, serviceIP)
	}
	serving, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}, servingKey.Public(), ca)
	if err != nil {
		return nil, fmt.Errorf("serving cert: %w", err)
	}

	adminKey, err := newKey()
	if err != nil {
		return nil, err
	}
	admin, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "nspool-test-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, adminKey.Public(), ca)
	if err != nil {
		return nil, fmt.Errorf("admin cert: %w", err)
	}

	ctlKey, err := newKey()
	if err != nil {
		return nil, err
	}
	ctl, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "nspool-control-plane-controllers", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ctlKey.Public(), ca)
	if err != nil {
		return nil, fmt.Errorf("controllers cert: %w", err)
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}

	p := pkiPaths(dir)
	p.caPEM = certPEM(caCert)
	p.adminCertPEM = certPEM(admin)
	p.controllerCertPEM = certPEM(ctl)
	if p.controllerKey, err = keyPEM(ctlKey); err != nil {
		return nil, err
	}
	if p.adminKey, err = keyPEM(adminKey); err != nil {
		return nil, err
	}
	servingKeyPEM, err := keyPEM(servingKey)
	if err != nil {
		return nil, err
	}
	saKeyPEM, err := keyPEM(saKey)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{pkiFiles.serving, certPEM(serving)}, {pkiFiles.servingKey, servingKeyPEM},
		{pkiFiles.saKey, saKeyPEM},
		{pkiFiles.admin, p.adminCertPEM}, {pkiFiles.adminKey, p.adminKey},
		{pkiFiles.ctl, p.controllerCertPEM}, {pkiFiles.ctlKey, p.controllerKey},
		{pkiFiles.ca, p.caPEM}, // last: see pkiFiles
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}
