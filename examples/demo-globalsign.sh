#!/usr/bin/env bash
# The GlobalSign DSS demo: builds the workspace, starts the reference GlobalSign DSS emulator on
# 127.0.0.1 (mutual TLS, API key and secret, short-lived identities whose keys live in SoftHSM), and signs
# through the PKCS#11 module with three real clients — pkcs11-tool (a raw SHA256-RSA-PKCS signature),
# poppler's pdfsig over NSS (a PDF) and OpenSSL 3 with pkcs11-provider (a CMS signature); verifies every
# signature with openssl against the emulator's demo CA; stops what it started. Needs no input.
#
#   examples/demo-globalsign.sh    (Rust toolchain required; as root it installs the Debian packages it
#                                   needs, otherwise it prints the install commands)
#
# Its last line is `verified V/S signatures`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

source "$root/examples/demo-lib.sh"
source "$root/examples/pdf.sh"

bash tests/interop/install-packages.sh openssl opensc libnss3-tools poppler-utils pkcs11-provider softhsm2

built_binaries
module="$bin/libcloudtoken.so"
provider=/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so

work=$(mktemp -d -t cloudtoken-dss-demo.XXXXXX)
state="$work/state"
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

signed=0
verified=0
# check WHAT COMMAND...: one signature made; counted as verified when COMMAND succeeds.
check() {
    local what=$1
    shift
    signed=$((signed + 1))
    if out=$("$@" 2>&1); then
        verified=$((verified + 1))
        say "verified: $what"
    else
        printf '%s\n' "$out" >&2
        echo "demo: NOT verified: $what" >&2
    fi
}

quiet "$bin/globalsign-dss-emulator" init --state "$state"
"$bin/globalsign-dss-emulator" serve --state "$state" --listen 127.0.0.1:0 2>"$work/emulator.log" &
server_pid=$!
wait_for_url "$state" "$work/emulator.log"
say "GlobalSign DSS emulator at $(cat "$state/server.url") (mTLS, API key and secret, 10-minute identities)"

# The configuration the emulator wrote: one login-free token for the account's identity. The processes
# below share that identity through a folder of the demo's own.
export CLOUDTOKEN_CONFIG="$state/cloudtoken.toml"
export XDG_RUNTIME_DIR="$work/runtime"
mkdir -m 700 "$XDG_RUNTIME_DIR"
token=$(sed -n 's/^label = "\(.*\)"$/\1/p' "$CLOUDTOKEN_CONFIG")
label=$token

# 1. pkcs11-tool: the identity's certificate without a login, then a raw signature.
objects=$(pkcs11-tool --module "$module" --token-label "$token" --list-objects --type cert 2>/dev/null |
    sed -n 's/^ *label: *//p' | paste -sd ';' | sed 's/;/; /g')
say "the module shows the token \"$token\"; certificates: $objects"
quiet pkcs11-tool --module "$module" --token-label "$token" --read-object --type cert --label "$label" \
    --output-file "$work/identity.der"
quiet openssl x509 -inform DER -in "$work/identity.der" -out "$work/identity.pem"
until=$(openssl x509 -in "$work/identity.pem" -noout -enddate | cut -d= -f2)
say "the identity's certificate ($(openssl x509 -in "$work/identity.pem" -noout -subject)) is valid until $until"
printf 'Invoice 2026-0042 - amount due 1,234.56 EUR\n' >"$work/invoice.txt"
quiet pkcs11-tool --module "$module" --token-label "$token" --sign -m SHA256-RSA-PKCS --label "$label" \
    --input-file "$work/invoice.txt" --output-file "$work/invoice.sig"
quiet openssl x509 -in "$work/identity.pem" -pubkey -noout -out "$work/identity.pub"
check "pkcs11-tool SHA256-RSA-PKCS signature (openssl dgst -verify; the certificate chains to the demo CA)" \
    bash -c 'openssl verify -CAfile "$1" -untrusted "$2" "$3" &&
             openssl dgst -sha256 -verify "$4" -signature "$5" "$6"' _ \
    "$state/ca.pem" "$state/issuing-ca.pem" "$work/identity.pem" "$work/identity.pub" \
    "$work/invoice.sig" "$work/invoice.txt"

# 2. pdfsig (poppler over NSS): an NSS database with the module and the demo CA, a PDF signed and checked.
nssdb="sql:$work/nssdb"
mkdir "$work/nssdb"
quiet certutil -N -d "$nssdb" --empty-password
quiet certutil -A -d "$nssdb" -n "cloudtoken demo DSS CA" -t "CT,C,C" -a -i "$state/ca.pem"
quiet modutil -dbdir "$nssdb" -add cloudtoken -libfile "$module" -force
make_pdf "$work/order.pdf" "Purchase order 77 - sealed by ACME GmbH"
quiet pdfsig -nssdir "$nssdb" -add-signature -nick "$token:$label" -digest SHA256 \
    "$work/order.pdf" "$work/order-signed.pdf"
(cd "$work" && quiet pdfsig -dump order-signed.pdf)
pdf_signed_bytes "$work/order-signed.pdf" "$work/order.signed-bytes"
check "pdfsig PDF signature (pdfsig: valid and trusted; openssl cms -verify of the embedded CMS)" \
    bash -c 'r=$(pdfsig -nssdir "$1" "$2" 2>/dev/null) && grep -q "Signature is Valid" <<<"$r" &&
             grep -q "Certificate is Trusted" <<<"$r" &&
             openssl cms -verify -inform DER -in "$3" -content "$4" -binary -purpose any -CAfile "$5" -out /dev/null' _ \
    "$nssdb" "$work/order-signed.pdf" "$work/order-signed.pdf.sig0" "$work/order.signed-bytes" "$state/ca.pem"

# 3. OpenSSL 3 with pkcs11-provider: a detached CMS signature with the key found by its pkcs11: URI.
cat >"$work/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = $provider
pkcs11-module-path = $module
activate = 1
EOF
uri="pkcs11:token=${token// /%20};object=${label// /%20};type=private"
printf 'Contract 77\nThe parties agree to the terms overleaf.\n' >"$work/contract.txt"
quiet env OPENSSL_CONF="$work/openssl.cnf" openssl cms -sign -binary -outform DER -md sha256 \
    -signer "$work/identity.pem" -inkey "$uri" -certfile "$state/issuing-ca.pem" \
    -in "$work/contract.txt" -out "$work/contract.p7s"
check "openssl + pkcs11-provider CMS signature (openssl cms -verify against the demo CA)" \
    openssl cms -verify -inform DER -in "$work/contract.p7s" -content "$work/contract.txt" -binary \
    -purpose any -CAfile "$state/ca.pem" -out /dev/null

identities=$(grep -c '"event":"identity","identity":"[^"]*","digest":null,"outcome":"ok"' "$state/audit.jsonl" || true)
quiet "$bin/globalsign-dss-emulator" audit-verify --state "$state"
say "the keys never left the emulator's HSM, only SHA-256 digests did; $identities identity shared by every process; audit chain intact"
echo "verified $verified/$signed signatures"
