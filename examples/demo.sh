#!/usr/bin/env bash
# The cloudtoken demo: builds the workspace, starts the reference CSC service on 127.0.0.1, and signs a PDF
# (poppler's pdfsig) and a CMS document (NSS cmsutil) through the PKCS#11 module, each authorized by the
# user's PIN and a one-time code from the demo authenticator; verifies every signature with openssl; stops.
#
#   examples/demo.sh     (Rust toolchain required; as root it installs the Debian packages it needs,
#                         otherwise it prints the install commands)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

source "$root/examples/demo-lib.sh"

bash tests/interop/install-packages.sh openssl opensc libnss3-tools poppler-utils jq

built_binaries
module="$bin/libcloudtoken.so"

work=$(mktemp -d -t cloudtoken-demo.XXXXXX)
state="$work/state"
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

quiet "$bin/csc-server" init --state "$state"
"$bin/csc-server" serve --state "$state" --listen 127.0.0.1:0 2>"$work/server.log" &
server_pid=$!
wait_for_url "$state" "$work/server.log"
say "reference CSC service at $(cat "$state/server.url") (TLS, demo CA, users alice/bob/carol)"

# The demo user Alice: her token's label and PIN, and two of her credentials, from demo.json.
demo="$state/demo.json"
token=$(jq -r '.tokens[0].label' "$demo")
pin=$(jq -r '.tokens[0].pin' "$demo")
# (Signing credentials only: her TLS login credentials have the same key types.)
cred() { jq -r --arg k "$1" "first(.tokens[0].credentials[] | select(.key == \$k and .otp == \"totp\" and .usage == \"signing\")) | .$2" "$demo"; }
# What Alice's authenticator app shows for a credential (the demo service computes it from her secret).
authenticator() { "$bin/csc-server" demo-otp --state "$state" --credential "$(cred "$1" id)"; }

# Applications see only Alice's token: pdfsig's password prompt answers once, for every token asking.
export CLOUDTOKEN_CONFIG="$work/cloudtoken.toml"
awk '/^\[\[token\]\]/ { n++ } n < 2' "$state/cloudtoken.toml" >"$CLOUDTOKEN_CONFIG"
chmod 600 "$CLOUDTOKEN_CONFIG"
certs=$(pkcs11-tool --module "$module" --token-label "$token" --list-objects --type cert 2>/dev/null |
    sed -n 's/^ *label: *//p' | paste -sd ';' | sed 's/;/; /g')
say "the module shows the token \"$token\"; certificates readable without login: $certs"

# An NSS database (what Firefox, Thunderbird, LibreOffice and poppler use) with the module and the demo CA.
nssdb="sql:$work/nssdb"
mkdir "$work/nssdb"
quiet certutil -N -d "$nssdb" --empty-password
quiet certutil -A -d "$nssdb" -n "cloudtoken demo CA" -t "CT,C,C" -a -i "$state/ca.pem"
quiet modutil -dbdir "$nssdb" -add cloudtoken -libfile "$module" -force

# make_pdf FILE TEXT: a one-page PDF.
source "$root/examples/pdf.sh"

# 1. PDF: pdfsig (poppler, over NSS) with the RSA-2048 credential.
label=$(cred rsa-2048 label)
make_pdf "$work/invoice.pdf" "Invoice 2026-0042 - amount due 1,234.56 EUR"
otp=$(authenticator rsa-2048)
say "signing invoice.pdf with pdfsig as \"$label\": PIN + code $otp from Alice's authenticator"
quiet pdfsig -nssdir "$nssdb" -nss-pwd "$pin$otp" -add-signature -nick "$token:$label" -kpw "$pin$otp" \
    -digest SHA256 "$work/invoice.pdf" "$work/invoice-signed.pdf"
report=$(pdfsig -nssdir "$nssdb" "$work/invoice-signed.pdf" 2>/dev/null)
grep -q "Signature is Valid" <<<"$report" && grep -q "Certificate is Trusted" <<<"$report" ||
    { echo "$report" >&2; exit 1; }
# The embedded CMS signature, checked by openssl over exactly the bytes the PDF's /ByteRange says are signed.
(cd "$work" && quiet pdfsig -dump invoice-signed.pdf)
pdf_signed_bytes "$work/invoice-signed.pdf" "$work/invoice.signed-bytes"
quiet openssl cms -verify -inform DER -in "$work/invoice-signed.pdf.sig0" -content "$work/invoice.signed-bytes" \
    -binary -purpose any -CAfile "$state/ca.pem" -out /dev/null
say "pdfsig: signature valid, certificate trusted; openssl cms -verify of the embedded signature: OK"

# 2. CMS: NSS cmsutil, detached signature with the ECDSA P-256 credential.
label=$(cred ec-p256 label)
printf 'Contract 77\nThe parties agree to the terms overleaf.\n' >"$work/contract.txt"
otp=$(authenticator ec-p256)
say "signing contract.txt as CMS with NSS cmsutil as \"$label\": PIN + code $otp"
printf '%s\n' "$pin$otp" >"$work/pin.txt"
quiet cmsutil -S -d "$nssdb" -f "$work/pin.txt" -N "$token:$label" -H SHA256 -G -T -Y NONE \
    -i "$work/contract.txt" -o "$work/contract.p7s"
quiet openssl cms -verify -inform DER -in "$work/contract.p7s" -content "$work/contract.txt" -binary \
    -purpose any -CAfile "$state/ca.pem" -out /dev/null
say "openssl cms -verify contract.p7s against the demo CA: OK"

say "done: the keys never left the service, only SHA-256 hashes did; stopping the service"
