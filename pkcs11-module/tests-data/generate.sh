#!/bin/sh
# Regenerates the certificate fixtures of the object/mechanism unit tests (run once; the DER files are
# committed). Private keys are throw-away and not kept.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/ca.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 7300 -subj "/O=cloudtoken tests/CN=Test Root CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -set_serial 1 -outform DER -out ca.der
openssl x509 -inform DER -in ca.der -out "$tmp/ca.pem"

issue() { # name keyfile subject serial
  openssl req -new -key "$2" -subj "$3" -out "$tmp/$1.csr"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial "$4" -days 3650 \
    -sha256 -extfile /dev/stdin -outform DER -out "$1.der" 2>/dev/null <<EXT
keyUsage=critical,digitalSignature,nonRepudiation
subjectKeyIdentifier=hash
EXT
}

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key" 2>/dev/null
issue ee-rsa2048 "$tmp/rsa.key" "/O=cloudtoken tests/CN=Alice RSA" 0x00a1b2c3d4e5f60718293a4b5c6d7e8f90
openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out "$tmp/pss.key" 2>/dev/null
issue ee-rsapss2048 "$tmp/pss.key" "/CN=Alice PSS" 5
for c in P-256:p256 P-384:p384 P-521:p521; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:${c%%:*} -pkeyopt ec_param_enc:named_curve \
    -out "$tmp/${c##*:}.key" 2>/dev/null
  issue "ee-${c##*:}" "$tmp/${c##*:}.key" "/O=cloudtoken tests/CN=Alice ${c%%:*}" 7
done
# A compressed EC point, which the module cannot hand to PKCS#11 clients.
openssl ec -in "$tmp/p256.key" -conv_form compressed -out "$tmp/p256c.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/p256c.key" -subj "/CN=compressed" -days 10 -outform DER -out ee-p256-compressed.der
# secp256k1: a curve the module does not support.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$tmp/k1.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/k1.key" -subj "/CN=k1" -days 10 -outform DER -out ee-secp256k1.der
python3 expected.py
