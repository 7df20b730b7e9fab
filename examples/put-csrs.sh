#!/usr/bin/env bash
# Makes one CSR of each accepted key type with openssl and PUTs it to a running csrgate, then
# checks each certificate with `openssl verify` against the CA served at /ca.pem.
#
#   examples/put-csrs.sh [BASE_URL] [CLIENT_HASH]      (defaults: http://127.0.0.1:8080 abc123)
#
# Needs openssl, curl and python3 (to read the JSON answer). Exits non-zero on the first failure.
set -euo pipefail

base=${1:-http://127.0.0.1:8080}
client=${2:-abc123}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -sSf "$base/ca.pem" -o "$work/ca.pem"

declare -A keys=(
  [rsa2048]="rsa:2048"
  [p256]="ec -pkeyopt ec_paramgen_curve:P-256"
  [p384]="ec -pkeyopt ec_paramgen_curve:P-384"
  [ed25519]="ed25519"
)
for name in rsa2048 p256 p384 ed25519; do
  # shellcheck disable=SC2086  # the key spec is deliberately split into openssl arguments
  openssl req -new -nodes -newkey ${keys[$name]} -keyout "$work/$name.key" \
    -subj "/CN=$name.example.internal" \
    -addext "subjectAltName=DNS:$name.example.internal" \
    -out "$work/$name.csr" 2>/dev/null
  status=$(curl -sS -o "$work/$name.json" -w '%{http_code}' -X PUT --data-binary @"$work/$name.csr" "$base/$client")
  if [ "$status" != 200 ]; then
    echo "$name: HTTP $status: $(cat "$work/$name.json")" >&2
    exit 1
  fi
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signed_x509_pem"], end="")' \
    "$work/$name.json" > "$work/$name.pem"
  # /ca.pem is the whole chain; the last certificate in it is the root.
  openssl verify -CAfile "$work/ca.pem" -untrusted "$work/ca.pem" "$work/$name.pem" >/dev/null
  serial=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$work/$name.json")
  echo "$name: issued serial $serial, verified"
done
