"""The CSR zoo's Python side, with the `cryptography` package.

    zoo.py gen p256|rsa|ed25519 NAME OUT   writes a PEM CSR (CN and DNS SAN NAME)
    zoo.py verify ROOT LEAF [DNSNAME]      verifies LEAF up to ROOT with cryptography's RFC 5280
                                           path validation (stricter than openssl's)
"""

import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store


def gen(kind: str, name: str, out: str) -> None:
    key = {
        "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }[kind]()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Zoo"),
                ]
            )
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, None if kind == "ed25519" else hashes.SHA256())
    )
    with open(out, "wb") as f:
        f.write(request.public_bytes(serialization.Encoding.PEM))


def verify(root: str, leaf: str, dns: str | None) -> None:
    with open(root, "rb") as f:
        store = Store(x509.load_pem_x509_certificates(f.read()))
    with open(leaf, "rb") as f:
        certificate = x509.load_pem_x509_certificate(f.read())
    builder = PolicyBuilder().store(store)
    if dns:
        builder.build_server_verifier(x509.DNSName(dns)).verify(certificate, [])
    else:
        builder.build_client_verifier().verify(certificate, [])


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "gen":
        gen(*args)
    elif command == "verify":
        verify(args[0], args[1], args[2] if len(args) > 2 else None)
    else:
        sys.exit(f"unknown command {command!r}")
