#!/usr/bin/env bash
# The test command (README, CI): installs the client tools the tests drive, builds OpenSC's p11test
# from Debian's source package, builds the workspace once in release mode, and runs every test binary
# in turn with a summary line each, then the doc tests. The tests start their own csc-server on
# 127.0.0.1 with a fresh state folder, and stop it when they end. Follows CARGO_TARGET_DIR.
#
# Skips are never silent: a test that cannot check its rule on this machine records it in
# <target>/release/test-skips.txt (support/skip.rs), printed and counted at the end; in CI (CI=true)
# a skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the real clients the tests drive (tests/interop/: pkcs11-tool, OpenSSL engine and
# provider, NSS, pdfsig, p11-kit, GnuTLS's p11tool and certtool (gnutls-bin); chromium: the approval page
# in tests/approval.rs, the DSS confirmation page in tests/cryptopro.rs and the TLS login in
# tests/tls_login.rs; libreoffice-writer-nogui: tests/libreoffice.rs; jq: examples/batch-sign.sh and this
# script; strace: tests/pkcs11_files.rs; openssh-client: ssh-keygen in tests/pkcs11_api.rs; softhsm2: the
# HSM of the reference services; dpkg-dev and man-db: examples/build-packages.sh and the installed pages in
# tests/package.rs; curl: tests/tls_login.rs; libssl-dev and pkg-config: the module checks signatures with
# the system's OpenSSL, which the `openssl` crate builds against; python3-venv: certomancer-csc-dummy
# below; libengine-gost-openssl: GOST keys, signatures and checks of the CryptoPro DSS emulator, the module
# and tests/cryptopro.rs; python3-pykcs11: examples/demo-cryptopro.sh's second client;
# openjdk-17-jdk-headless: jarsigner and jar in tests/globalsign/): installed when missing (as root;
# otherwise the exact install commands are printed), pkcs11-provider from bookworm-backports on Debian 12.
bash tests/interop/install-packages.sh \
    openssl opensc libengine-pkcs11-openssl pkcs11-provider libnss3-tools poppler-utils p11-kit p11-kit-modules \
    chromium libreoffice-writer-nogui jq strace openssh-client softhsm2 gnutls-bin dpkg-dev man-db curl \
    libssl-dev pkg-config python3-venv libengine-gost-openssl python3-pykcs11 openjdk-17-jdk-headless

target=${CARGO_TARGET_DIR:-target}
# certomancer-csc-dummy (PyPI), the third-party CSC server of tests/certomancer.rs, in a virtual
# environment of its own under the target folder (kept between runs).
venv="$target/certomancer-venv"
if [ ! -x "$venv/bin/certomancer-csc" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'certomancer-csc-dummy==0.4.2'
fi

# OpenSC's p11test for tests/conformance.rs (cached in <target>/conformance/).
bash tests/conformance/build-p11test.sh

# One release build serves every test: the module is tested as the .so applications load.
cargo build --release --workspace --locked

skips="$target/release/test-skips.txt"
rm -f "$skips"
if [ "${CI:-}" = true ]; then
    export CLOUDTOKEN_TESTS_NO_SKIP=1
fi

# The test executables of the build, as cargo would run them: name, executable, package folder.
suites=$(cargo test --release --workspace --locked --no-run --message-format=json |
    jq -r 'select(.reason == "compiler-artifact" and .profile.test == true and .executable != null)
           | "\(.target.name)\(if .target.kind[0] == "test" then "" else " (\(.target.kind[0]))" end)\t\(.executable)\t\(.manifest_path | rtrimstr("/Cargo.toml"))"')

started=$SECONDS
summary=()
failed=0
log=$(mktemp)
while IFS=$'\t' read -r name exe dir; do
    echo "=== $name ($exe)"
    t0=$SECONDS
    status=0
    (cd "$dir" && "$exe") 2>&1 | tee "$log" || status=$?
    result=$(grep -E '^test result:' "$log" | tail -n 1 | sed 's/^test result: //; s/; finished in .*//')
    line=$(printf '%-24s %-6s %4ss  %s' "$name" "$([ "$status" -eq 0 ] && echo ok || echo FAILED)" \
        "$((SECONDS - t0))" "${result:-no result line}")
    summary+=("$line")
    echo "=== $line"
    [ "$status" -eq 0 ] || failed=$((failed + 1))
done <<<"$suites"
rm -f "$log"

echo "=== doc tests"
t0=$SECONDS
doc=ok
cargo test --release --workspace --locked --doc || { doc=FAILED; failed=$((failed + 1)); }
summary+=("$(printf '%-24s %-6s %4ss' "doc tests" "$doc" "$((SECONDS - t0))")")

echo
echo "=== summary ($((SECONDS - started)) s)"
printf '%s\n' "${summary[@]}"
if [ -s "$skips" ]; then
    echo "=== $(wc -l <"$skips") skipped check(s):"
    cat "$skips"
else
    echo "=== no skipped checks"
fi
if [ "$failed" -ne 0 ]; then
    echo "=== $failed suite(s) failed"
    exit 1
fi
echo "=== all suites passed"
