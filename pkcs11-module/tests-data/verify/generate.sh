#!/bin/sh
# Regenerates the signature vectors of mechanism/verify.rs's tests (run once; the files are committed).
# Each key is throw-away: only its public key (SPKI DER) and signatures over "abc" are kept.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf abc > "$tmp/msg"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key" 2>/dev/null
openssl pkey -in "$tmp/rsa.key" -pubout -outform DER -out rsa2048.spki.der
openssl dgst -sha256 -sign "$tmp/rsa.key" -out rsa2048-pkcs1-sha256.sig "$tmp/msg"
openssl dgst -sha256 -sign "$tmp/rsa.key" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
  -sigopt rsa_mgf1_md:sha256 -out rsa2048-pss-sha256-salt32.sig "$tmp/msg"
openssl dgst -sha384 -sign "$tmp/rsa.key" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:0 \
  -sigopt rsa_mgf1_md:sha384 -out rsa2048-pss-sha384-salt0.sig "$tmp/msg"

for c in P-384:p384:sha384 P-521:p521:sha1 P-256:p256:sha512; do
  curve=${c%%:*}; rest=${c#*:}; name=${rest%%:*}; md=${rest#*:}
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:$curve -pkeyopt ec_param_enc:named_curve \
    -out "$tmp/$name.key" 2>/dev/null
  openssl pkey -in "$tmp/$name.key" -pubout -outform DER -out "$name.spki.der"
  openssl dgst -$md -sign "$tmp/$name.key" -out "$name-$md.sig" "$tmp/msg"
done

# GOST R 34.10-2012 (needs libengine-gost-openssl): the signature of the Streebog hash of "abc", in the
# engine's (and PKCS#11's) order, s || r big-endian.
for size in 256 512; do
  openssl genpkey -engine gost -algorithm gost2012_$size -pkeyopt paramset:A -out "$tmp/gost$size.key" 2>/dev/null
  openssl pkey -engine gost -in "$tmp/gost$size.key" -pubout -outform DER -out "gost$size.spki.der" 2>/dev/null
  openssl dgst -engine gost -md_gost12_$size -binary "$tmp/msg" > "$tmp/gost$size.hash" 2>/dev/null
  openssl pkeyutl -engine gost -sign -inkey "$tmp/gost$size.key" -in "$tmp/gost$size.hash" \
    -out "gost$size-abc.sig" 2>/dev/null
done
