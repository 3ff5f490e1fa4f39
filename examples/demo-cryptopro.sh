#!/usr/bin/env bash
# The CryptoPro DSS demo: builds the module and the DSS emulator, starts the emulator on 127.0.0.1, and
# signs through the PKCS#11 module with GOST R 34.10-2012 keys (256 and 512 bits; the raw signature of a
# Streebog hash and hash-and-sign with Streebog) from two real clients — OpenSC's pkcs11-tool and a
# Python application on PyKCS11 — each operation confirmed on the user's "phone" (the emulator's
# `demo-confirm`, which answers exactly as the confirmation page does), then a package of 10 documents
# under one confirmation. Every signature is verified with OpenSSL's GOST engine against the
# certificate, and the certificate against the emulator's CA. Stops what it started.
#
#   examples/demo-cryptopro.sh   (Rust toolchain required; as root it installs the Debian packages it
#                                 needs, otherwise it prints the install commands)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

source "$root/examples/demo-lib.sh"

bash tests/interop/install-packages.sh openssl opensc libengine-gost-openssl softhsm2 python3-pykcs11 jq

built_binaries -p cloudtoken -p cryptopro-dss-emulator
module="$bin/libcloudtoken.so"
emulator="$bin/cryptopro-dss-emulator"
# Debian's Python with Debian's PyKCS11, whatever python3 comes first in PATH.
python=/usr/bin/python3

work=$(mktemp -d -t cloudtoken-dss-demo.XXXXXX)
state="$work/state"
server_pid=
phone_pid=
cleanup() {
    for pid in $phone_pid $server_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

quiet "$emulator" init --state "$state"
"$emulator" serve --state "$state" --listen 127.0.0.1:0 2>"$work/server.log" </dev/null &
server_pid=$!
wait_for_url "$state" "$work/server.log"
say "CryptoPro DSS emulator at $(cat "$state/server.url") (STS + SignServer, TLS, demo CA)"

export CLOUDTOKEN_CONFIG="$state/cloudtoken.toml"
token="Alice DSS"
p11() { pkcs11-tool --module "$module" --token-label "$1" "${@:2}"; }
certs=$(p11 "$token" --list-objects --type cert 2>/dev/null | sed -n 's/^ *label: *//p' | paste -sd ';' | sed 's/;/; /g')
say "token \"$token\", certificates readable without login: $certs"

# key_id LABEL-PREFIX: CKA_ID (hex) of the certificate whose label starts with the prefix.
key_id() {
    p11 "$token" --list-objects --type cert 2>/dev/null |
        awk -v p="$1" '/^ *label:/ { sub(/^ *label: */, ""); l = $0 } /^ *ID:/ && index(l, p) == 1 { print $2; exit }'
}
key_label() { p11 "$token" --list-objects --type cert 2>/dev/null | sed -n "s/^ *label: *\\($1.*\\)/\\1/p" | head -1; }

# Each certificate once: read through the module, checked against the emulator's CA.
for size in 256 512; do
    id=$(key_id "Alice Example GOST $size")
    quiet p11 "$token" --read-object --type cert --id "$id" -o "$work/cert$size.der"
    quiet openssl x509 -engine gost -inform DER -in "$work/cert$size.der" -out "$work/cert$size.pem"
    quiet openssl x509 -engine gost -in "$work/cert$size.pem" -pubkey -noout -out "$work/pub$size.pem"
    openssl verify -engine gost -CAfile "$state/ca.pem" "$work/cert$size.pem" 2>/dev/null | grep -q ': OK$' ||
        { echo "the GOST $size certificate does not chain to the emulator's CA" >&2; exit 1; }
done
say "the GOST certificates chain to the emulator's CA (openssl verify with the GOST engine)"

# phone N: the user's phone confirms the next N operations (or sign-ins) of alice.
phone() {
    "$emulator" demo-confirm --state "$state" --user alice --count "$1" --wait 60 >"$work/phone.log" 2>&1 &
    phone_pid=$!
}
phone_done() { wait "$phone_pid"; phone_pid=; sed 's/^/    phone: /' "$work/phone.log" >&2; }

signed=0
verified=0
# check SIZE DOCUMENT SIGNATURE: OpenSSL's GOST engine verifies the signature of Streebog(DOCUMENT).
check() {
    signed=$((signed + 1))
    if openssl dgst -engine gost "-md_gost12_$1" -verify "$work/pub$1.pem" -signature "$3" "$2" 2>/dev/null |
        grep -q '^Verified OK$'; then
        verified=$((verified + 1))
    else
        echo "signature $3 does not verify" >&2
    fi
}

printf 'Contract 2026-17: delivery of 40 tonnes of grain.\n' >"$work/contract.txt"
printf 'Annex 1: schedule.\n' >"$work/annex.txt"

# 1. pkcs11-tool: the raw GOST R 34.10-2012 signature of a Streebog-256 hash, and hash-and-sign with
#    Streebog-512.
openssl dgst -engine gost -md_gost12_256 -binary -out "$work/contract.h256" "$work/contract.txt" 2>/dev/null
say "pkcs11-tool -m GOSTR3410 (raw, 256-bit key) on the Streebog-256 hash of contract.txt; the phone confirms"
phone 1
quiet p11 "$token" --sign -m GOSTR3410 --id "$(key_id "Alice Example GOST 256")" \
    -i "$work/contract.h256" -o "$work/contract.256.sig"
phone_done
check 256 "$work/contract.txt" "$work/contract.256.sig"
say "pkcs11-tool -m GOSTR3410-WITH-GOSTR3411-12-512 on contract.txt; the phone confirms"
phone 1
quiet p11 "$token" --sign -m GOSTR3410-WITH-GOSTR3411-12-512 --id "$(key_id "Alice Example GOST 512")" \
    -i "$work/contract.txt" -o "$work/contract.512.sig"
phone_done
check 512 "$work/contract.txt" "$work/contract.512.sig"

# 2. A Python application (PyKCS11): hash-and-sign with Streebog-256; then, on the session token, a
#    package of 10 documents in one process under one confirmation.
cat >"$work/sign.py" <<'EOF'
# sign.py MODULE TOKEN KEY-LABEL MECHANISM OUT-DIR FILE...: one signature per file, FILE.sig in OUT-DIR.
import os, sys
import PyKCS11
from PyKCS11.LowLevel import CKA_CLASS, CKA_LABEL, CKO_PRIVATE_KEY

module, token, label, mechanism, out = sys.argv[1:6]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
slot = next(s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == token)
session = lib.openSession(slot)
key = session.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, label)])[0]
for path in sys.argv[6:]:
    with open(path, "rb") as f:
        signature = session.sign(key, f.read(), PyKCS11.Mechanism(int(mechanism, 0), None))
    with open(os.path.join(out, os.path.basename(path) + ".sig"), "wb") as f:
        f.write(bytes(signature))
session.closeSession()
EOF
# CKM_GOSTR3410_WITH_GOSTR3411_12_256 (TC26, as OpenSC and Rutoken define it).
streebog256=0xD4321008
mkdir "$work/py" "$work/package"
say "python3 (PyKCS11) signs annex.txt with GOSTR3410-WITH-GOSTR3411-12-256; the phone confirms"
phone 1
quiet "$python" "$work/sign.py" "$module" "$token" "$(key_label "Alice Example GOST 256")" "$streebog256" \
    "$work/py" "$work/annex.txt"
phone_done
check 256 "$work/annex.txt" "$work/py/annex.txt.sig"

for n in $(seq 1 10); do printf 'Invoice %02d of the October package\n' "$n" >"$work/package/invoice-$n.txt"; done
say "python3 (PyKCS11) signs a package of 10 invoices on \"Alice DSS session\": one confirmation"
phone 1
quiet "$python" "$work/sign.py" "$module" "Alice DSS session" "$(key_label "Alice Example GOST 256")" \
    "$streebog256" "$work/package" "$work"/package/invoice-*.txt
phone_done
for n in $(seq 1 10); do
    check 256 "$work/package/invoice-$n.txt" "$work/package/invoice-$n.txt.sig"
done
confirmations=$(grep -c '^confirmed' "$work/phone.log")
[ "$confirmations" -eq 1 ] || { echo "the package took $confirmations confirmations" >&2; exit 1; }

quiet "$emulator" audit-verify --state "$state"
say "the emulator's audit trail is intact; the keys never left it, only Streebog hashes did"
[ "$verified" -eq "$signed" ] && [ "$signed" -gt 0 ] || { echo "verified $verified/$signed signatures"; exit 1; }
echo "verified $verified/$signed signatures"
