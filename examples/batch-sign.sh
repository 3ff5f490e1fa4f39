#!/usr/bin/env bash
# A package signed with one act of the user: starts the reference CSC service as examples/demo.sh does,
# enrols a login-free token with `cloudtoken enroll`, starts `cloudtoken agent` for the batch, and signs N
# generated PDF invoices with poppler's pdfsig, one process per PDF (pdfsig signs twice per PDF). The SMS
# credential's one-time code is asked once, by the token's prompt program (here the test prompt, which
# reads the SMS from the demo service's outbox), for a request that names the package; the agent hands
# the rest of that authorization to the following pdfsig processes. Every signature is verified with
# pdfsig and with `openssl cms`. The last line is
#     signed S/N, verified V/N, one-time codes delivered: K
# counted from the outputs and the service's SMS outbox.
#
#   examples/batch-sign.sh [N]        (default 30; Rust toolchain required; as root it installs the
#                                      Debian packages it needs, otherwise it prints the install commands)
# Environment: CLOUDTOKEN_BIN_DIR=DIR uses the binaries in DIR instead of building (tests);
# BATCH_SIGN_WORK=DIR works in DIR and keeps it (service state, PDFs, logs) instead of a temporary folder.
set -euo pipefail
n=${1:-30}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N]  (N: number of PDFs, at least 1)" >&2; exit 2; }
cd "$(dirname "$0")/.."
root=$(pwd)

source "$root/examples/demo-lib.sh"

bash tests/interop/install-packages.sh openssl libnss3-tools poppler-utils jq

built_binaries
module="$bin/libcloudtoken.so"

if [ -n "${BATCH_SIGN_WORK:-}" ]; then
    mkdir -p "$BATCH_SIGN_WORK"
    work=$(cd "$BATCH_SIGN_WORK" && pwd)
    keep=1
else
    work=$(mktemp -d -t cloudtoken-batch.XXXXXX)
    keep=
fi
state="$work/state"
server_pid=
cleanup() {
    if [ -n "${CLOUDTOKEN_AGENT_PID:-}" ]; then kill "$CLOUDTOKEN_AGENT_PID" 2>/dev/null || true; fi
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
    [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT

quiet "$bin/csc-server" init --state "$state"
"$bin/csc-server" serve --state "$state" --listen 127.0.0.1:0 2>"$work/server.log" &
server_pid=$!
wait_for_url "$state" "$work/server.log"
url=$(cat "$state/server.url")
say "reference CSC service at $url"

# Alice's SMS credential: the service texts her a code for each authorization it is asked for.
demo="$state/demo.json"
cred=$(jq -r '.tokens[0].credentials[] | select(.key == "rsa-3072" and .otp == "sms") | .id' "$demo")
label=$(jq -r --arg c "$cred" '.tokens[0].credentials[] | select(.id == $c) | .label' "$demo")
multisign=$(jq -r --arg c "$cred" '.tokens[0].credentials[] | select(.id == $c) | .multisign' "$demo")
token="Alice Example"

# The "person" at the prompt: the test prompt answers the PIN from a file and the code from the SMS the
# service sent (a desktop would use examples/prompt/desktop.sh, a terminal examples/prompt/terminal.sh).
answers="$work/prompt"
mkdir -p "$answers"
chmod 700 "$answers"
jq -r '.tokens[0].pin' "$demo" >"$answers/pin"
printf '%s\n' "$state" >"$answers/state"
printf '%s\n' "$bin/csc-server" >"$answers/csc-server"
chmod 600 "$answers"/*

# Enrolment as a person does it: the account password once, kept nowhere; a login-free token (no
# application ever logs in) that asks for the PIN and code through the prompt program.
export CLOUDTOKEN_CONFIG="$work/config/cloudtoken.toml"
jq -r '.tokens[0].password' "$demo" | quiet "$bin/cloudtoken" enroll --url "$url" --account alice \
    --label "$token" --ca-file "$state/ca.pem" --api v2 --mode login-free \
    --prompt-command "$root/examples/prompt/test-prompt.sh" --prompt-arg "$answers" --password-stdin
say "enrolled the login-free token \"$token\" (configuration $CLOUDTOKEN_CONFIG)"

# An NSS database (what poppler, LibreOffice and Firefox use) with the module and the demo CA.
nssdb="sql:$work/nssdb"
mkdir -p "$work/nssdb"
quiet certutil -N -d "$nssdb" --empty-password
quiet certutil -A -d "$nssdb" -n "cloudtoken demo CA" -t "CT,C,C" -a -i "$state/ca.pem"
quiet "$bin/cloudtoken" register --nss "$nssdb" --module "$module"

# N invoices: one-page PDFs (make_pdf FILE TEXT).
source "$root/examples/pdf.sh"
mkdir -p "$work/invoices" "$work/signed" "$work/check"
for i in $(seq "$n"); do
    make_pdf "$work/invoices/invoice-$i.pdf" "Invoice 2026-$(printf '%04d' "$i") - amount due $((100 + i)).00 EUR"
done

# The agent for this batch: every pdfsig process finds it through CLOUDTOKEN_AGENT_SOCK. pdfsig makes
# two signatures per PDF, so the package needs 2N; the first authorization asks for them all (up to
# the credential's multisign) with words that name the package.
signatures=$((2 * n))
agent_env=$("$bin/cloudtoken" agent --batch-signatures "$signatures" --batch-description "$n invoices")
eval "$agent_env" >/dev/null
say "agent $CLOUDTOKEN_AGENT_SOCK: the first signature asks for $((signatures < multisign ? signatures : multisign)) signatures (\"$n invoices\")"

say "signing $n PDFs with pdfsig as \"$label\", one process each"
signed=0
for i in $(seq "$n"); do
    in="$work/invoices/invoice-$i.pdf" out="$work/signed/invoice-$i.pdf"
    if pdfsig -nssdir "$nssdb" -add-signature -nick "$token:$label" -digest SHA256 "$in" "$out" \
        >"$work/check/sign-$i.log" 2>&1 && [ -s "$out" ]; then
        signed=$((signed + 1))
    else
        echo "invoice-$i.pdf: pdfsig failed:" >&2
        sed 's/^/    /' "$work/check/sign-$i.log" >&2
    fi
done

say "verifying every signature with pdfsig and with openssl cms"
verified=0
for i in $(seq "$n"); do
    out="$work/signed/invoice-$i.pdf"
    [ -s "$out" ] || continue
    report=$(pdfsig -nssdir "$nssdb" "$out" 2>&1 || true)
    grep -q "Signature is Valid" <<<"$report" && grep -q "Certificate is Trusted" <<<"$report" || {
        echo "invoice-$i.pdf: pdfsig does not find a valid, trusted signature:" >&2
        printf '%s\n' "$report" | sed 's/^/    /' >&2
        continue
    }
    # The embedded CMS signature, checked by openssl over exactly the bytes /ByteRange says are signed.
    dir="$work/check/$i"
    mkdir -p "$dir"
    (cd "$dir" && pdfsig -dump "$out" >/dev/null 2>&1) || true
    sig="$dir/$(basename "$out").sig0"
    pdf_signed_bytes "$out" "$dir/signed-bytes"
    if [ -s "$sig" ] && openssl cms -verify -inform DER -in "$sig" -content "$dir/signed-bytes" -binary \
        -purpose any -CAfile "$state/ca.pem" -out /dev/null >"$dir/openssl.log" 2>&1; then
        verified=$((verified + 1))
    else
        echo "invoice-$i.pdf: openssl cms -verify failed:" >&2
        sed 's/^/    /' "$dir/openssl.log" >&2 || true
    fi
done

# What reached Alice's phone: the service's SMS outbox, one line per code sent.
codes=$(jq -c --arg c "$cred" 'select(.credential == $c)' "$state/sms-outbox.jsonl" 2>/dev/null | wc -l)
echo "signed $signed/$n, verified $verified/$n, one-time codes delivered: $codes"
