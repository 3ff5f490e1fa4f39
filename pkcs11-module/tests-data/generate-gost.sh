#!/bin/sh
# Regenerates the GOST R 34.10-2012 certificate fixtures of the object unit tests (run once; the DER files
# and expected-gost.txt are committed). Needs OpenSSL's GOST engine (Debian: libengine-gost-openssl).
# The keys are throw-away; the certificates are self-signed. expected-gost.txt holds what OpenSSL's own
# parser finds in each certificate: the public key's OCTET STRING (CKA_VALUE of the public key object).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > expected-gost.txt
for c in 256:A:"/CN=Alice GOST 256" 512:C:"/CN=Alice GOST 512"; do
  size=${c%%:*}; rest=${c#*:}; set=${rest%%:*}; subject=${rest#*:}
  openssl genpkey -engine gost -algorithm gost2012_$size -pkeyopt paramset:$set -out "$tmp/k.pem" 2>/dev/null
  openssl req -engine gost -x509 -new -key "$tmp/k.pem" -md_gost12_$size -subj "$subject" -days 3650 \
    -addext keyUsage=critical,digitalSignature,nonRepudiation -outform DER -out "ee-gost$size.der" 2>/dev/null
  openssl pkey -engine gost -in "$tmp/k.pem" -pubout -outform DER -out "$tmp/spki.der" 2>/dev/null
  # The subjectPublicKey BIT STRING holds a DER OCTET STRING: its contents are X || Y, little-endian.
  offset=$(openssl asn1parse -inform DER -in "$tmp/spki.der" | awk '/BIT STRING/ {print $1+0; exit}')
  value=$(openssl asn1parse -inform DER -in "$tmp/spki.der" -strparse "$offset" -noout -out "$tmp/os.der" \
    && openssl asn1parse -inform DER -in "$tmp/os.der" | sed -n 's/.*\[HEX DUMP\]://p')
  echo "ee-gost$size.value=$(echo "$value" | tr 'A-F' 'a-f')" >> expected-gost.txt
done
