// Command zoo is the CSR zoo's Go side, standard library only.
//
//	go run zoo.go gen p256|rsa|ed25519 NAME OUT     writes a PEM CSR made by crypto/x509 (CN and DNS SAN NAME)
//	go run zoo.go verify ROOT LEAF [DNSNAME]        verifies LEAF up to ROOT with x509.Verify
//
// Go's verifier is stricter than openssl's (it refuses, for instance, a CN-only server
// certificate and malformed names), which is why the zoo asks it too.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: zoo gen KIND NAME OUT | zoo verify ROOT LEAF [DNSNAME]"))
	}
	switch os.Args[1] {
	case "gen":
		fail(gen(os.Args[2], os.Args[3], os.Args[4]))
	case "verify":
		dns := ""
		if len(os.Args) > 4 {
			dns = os.Args[4]
		}
		fail(verify(os.Args[2], os.Args[3], dns))
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func gen(kind, name, out string) error {
	var key crypto.Signer
	var err error
	switch kind {
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("unknown key kind %q", kind)
	}
	if err != nil {
		return err
	}
	template := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: name, Organization: []string{"Zoo"}},
		DNSNames: []string{name},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, template, key)
	if err != nil {
		return err
	}
	return os.WriteFile(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644)
}

func verify(rootFile, leafFile, dns string) error {
	rootPEM, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return fmt.Errorf("%s holds no certificate", rootFile)
	}
	leafPEM, err := os.ReadFile(leafFile)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(leafPEM)
	if block == nil {
		return fmt.Errorf("%s is not PEM", leafFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:     roots,
		DNSName:   dns,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}
