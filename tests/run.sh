#!/usr/bin/env bash
# The test command (README, CI): installs the client tools the tests drive, builds the workspace once in
# release mode, and runs every test. The tests start their own csc-server on 127.0.0.1 with a fresh state
# folder, and stop it when they end.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the real clients the tests drive (tests/interop.rs; chromium: the approval page in
# tests/approval.rs; libreoffice-writer-nogui: tests/libreoffice.rs; jq: examples/batch-sign.sh in
# tests/batch.rs; softhsm2: the HSM of the reference service): installed when missing (as root; otherwise
# the exact install commands are printed), pkcs11-provider from bookworm-backports on Debian 12.
bash tests/interop/install-packages.sh \
    openssl opensc libengine-pkcs11-openssl pkcs11-provider libnss3-tools poppler-utils p11-kit p11-kit-modules \
    chromium libreoffice-writer-nogui jq softhsm2

# One release build serves every test: the module is tested as the .so applications load.
cargo build --release --workspace --locked
cargo test --release --workspace --locked --no-fail-fast
