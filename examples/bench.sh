#!/usr/bin/env bash
# The speed benchmark (issue 10): in one run on this machine, the same two signature schemes (CKM_ECDSA
# over a SHA-256 hash with P-256, CKM_SHA256_RSA_PKCS with RSA-2048) through
#   - SoftHSM2 direct (a token of its own under target/bench/softhsm),
#   - p11-kit remoting of that token (`p11-kit server` on a unix socket, `p11-kit-client.so`),
#   - cloudtoken → the reference csc-server over loopback TLS (the e-seal account `seal`: seal-p256 and
#     seal-rsa2048, PIN only, SCAL 1; login-free tokens with pin_file),
# and, against the same server and SAD kind, remote-client's signHash in process (the module's overhead
# is cloudtoken's median minus that one's); then cloudtoken with 1, 2, 4, 8, 16 threads (one session
# each, one ECDSA credential) over a fixed time, and a 60 s sustained e-seal run. The work is done by
# the cloudtoken-bench program (examples/bench/), which loads each module as applications load it and
# checks every timed signature against the public key after its run.
#
#   examples/bench.sh            (about 2 minutes plus the build)
#   examples/bench.sh --quick    (short runs: 300 signatures per case, 1 s per thread count, 5 s e-seal)
#
# Prints a table and writes target/bench/summary.json (exactly the keys issue 10 names; medians in ms)
# and target/bench/detail.json (every statistic, the plan, the load, the "Done when" checks); see README
# "Benchmark". As root it installs the Debian packages it needs (softhsm2, p11-kit, p11-kit-modules, jq,
# libssl-dev, pkg-config), otherwise it prints the
# install commands. Every server listens on 127.0.0.1 or a unix socket under target/bench and is stopped
# at the end; a setup failure ends the script with a non-zero status and no summary.
set -euo pipefail
quick=
case "${1:-}" in
"") ;;
--quick) quick=--quick ;;
*)
    echo "usage: $0 [--quick]" >&2
    exit 2
    ;;
esac
[ $# -le 1 ] || { echo "usage: $0 [--quick]" >&2; exit 2; }
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }

# libssl-dev and pkg-config: the module's build (it checks signatures with the system's OpenSSL).
bash tests/interop/install-packages.sh softhsm2 p11-kit p11-kit-modules jq libssl-dev pkg-config
softhsm_module=/usr/lib/softhsm/libsofthsm2.so
p11kit_client=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
[ -f "$softhsm_module" ] || fail "$softhsm_module missing (Debian package softhsm2)"
[ -f "$p11kit_client" ] || fail "$p11kit_client missing (Debian package p11-kit-modules)"

say "building the module, csc-server and cloudtoken-bench (release)"
cargo build --release --locked --quiet -p cloudtoken -p csc-server -p cloudtoken-bench
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target="$root/$target" ;; esac
bin="$target/release"

bench="$root/target/bench"
p11kit_pid=
server_pid=
stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$server_pid"
    stop "$p11kit_pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything of a run is new: tokens, service state, configuration, summary.
rm -rf "$bench"
mkdir -p "$bench"
umask 077

say "SoftHSM2 token with a P-256 and an RSA-2048 key ($bench/softhsm)"
"$bin/cloudtoken-bench" softhsm-init "$bench/softhsm" >/dev/null || fail "SoftHSM setup failed"

say "p11-kit server for that token (unix socket $bench/p11kit.sock)"
SOFTHSM2_CONF="$bench/softhsm/softhsm2.conf" p11-kit server --foreground --name "$bench/p11kit.sock" \
    --provider "$softhsm_module" "pkcs11:token=cloudtoken-bench" >"$bench/p11kit.log" 2>&1 &
p11kit_pid=$!
for _ in $(seq 100); do [ -S "$bench/p11kit.sock" ] && break; sleep 0.1; done
[ -S "$bench/p11kit.sock" ] || { cat "$bench/p11kit.log" >&2; fail "p11-kit server did not start"; }

say "csc-server on 127.0.0.1 ($bench/csc)"
"$bin/csc-server" init --state "$bench/csc" >"$bench/csc-init.log" 2>&1 ||
    { cat "$bench/csc-init.log" >&2; fail "csc-server init failed"; }
"$bin/csc-server" serve --state "$bench/csc" --listen 127.0.0.1:0 2>"$bench/csc-server.log" &
server_pid=$!
for _ in $(seq 600); do
    [ -s "$bench/csc/server.url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[ -s "$bench/csc/server.url" ] || { cat "$bench/csc-server.log" >&2; fail "csc-server did not start"; }

# The e-seal as an unattended signer configures it: login-free tokens, the seal's PIN in a file. "Seal"
# makes one authorization per 500 signatures, so that the 2000 timed signatures of the latency runs span
# four renewals; "Seal Bulk", the token of the thread and sustained runs, one per 10000 (the seals'
# multisign), as an e-seal server signing all day would: every authorization costs the service an
# Argon2 check of the PIN, CPU the signatures share on this 2-core machine.
jq -er '.tokens[] | select(.user == "seal") | .pin' "$bench/csc/demo.json" >"$bench/seal.pin" ||
    fail "no seal account in demo.json"
seal_token() {
    cat <<EOF

[[token]]
label = "$1"
url_file = "$bench/csc/server.url"
api = "v2"
ca_file = "$bench/csc/ca.pem"
account = "seal"
refresh_token_file = "$bench/csc/seal.refresh"
mode = "login-free"
pin_file = "$bench/seal.pin"
batch_size = $2
EOF
}
{
    printf '# The benchmark'"'"'s e-seal tokens (written by examples/bench.sh).\n[log]\nlevel = "error"\n'
    seal_token Seal 500
    seal_token "Seal Bulk" 10000
} >"$bench/cloudtoken.toml"

say "measuring${quick:+ (quick)}"
"$bin/cloudtoken-bench" run $quick \
    --softhsm-dir "$bench/softhsm" --softhsm-module "$softhsm_module" \
    --p11kit-address "unix:path=$bench/p11kit.sock" --p11kit-module "$p11kit_client" \
    --cloudtoken-module "$bin/libcloudtoken.so" --cloudtoken-config "$bench/cloudtoken.toml" \
    --csc-state "$bench/csc" --out "$bench/summary.json" ||
    { tail -n 20 "$bench/csc-server.log" >&2; fail "the benchmark failed"; }
