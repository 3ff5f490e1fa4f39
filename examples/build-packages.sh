#!/usr/bin/env bash
# Builds cloudtoken's Debian packages into target/debian/ ($CARGO_TARGET_DIR/debian/ when that is set):
#   cloudtoken_<version>_<arch>.deb   the signer's package: the module in /usr/lib/<multiarch>/pkcs11/, the
#                                     p11-kit module file, /usr/bin/cloudtoken, its man pages and shell
#                                     completions, the prompt scripts and the example configuration
#   csc-server_<version>_<arch>.deb   the reference CSC service (demos and tests)
#
#   examples/build-packages.sh        then: sudo dpkg -i target/debian/cloudtoken_*.deb
#
# The packages are made from the workspace's release build, so after `tests/run.sh` (or any
# `cargo build --release --workspace`) nothing is compiled again. The man pages and completions are
# generated from the code (`cloudtoken-docs`); cargo-deb (`cargo install cargo-deb --locked` when it is
# missing) packs them. Needs dpkg-dev (dpkg-shlibdeps works out the packages' dependencies) and gzip.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb_version=3.8.0

for tool in dpkg-shlibdeps gzip; do
    command -v "$tool" >/dev/null || {
        echo "build-packages: $tool is missing (Debian: apt-get install dpkg-dev gzip)" >&2
        exit 1
    }
done
if ! cargo deb --version 2>/dev/null | grep -q '^cargo-deb 3\.'; then
    echo "build-packages: installing cargo-deb $cargo_deb_version" >&2
    cargo install cargo-deb --locked --version "$cargo_deb_version"
fi

# The whole workspace, as tests/run.sh builds it: building fewer packages would resolve the shared
# dependencies' features differently and compile them all again.
cargo build --release --workspace --locked

target=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
release="$target/release"
docs="$release/docs"
rm -rf "$docs"
"$release/cloudtoken-docs" --example examples/cloudtoken.example.toml --out "$docs" >/dev/null
# Debian policy: man pages compressed with gzip -9, without a timestamp (-n) so that builds repeat.
gzip -9nf "$docs"/man/*.1 "$docs"/man/*.5

out="$target/debian"
mkdir -p "$out"
arch=$(dpkg --print-architecture)
grep -q "^\[package.metadata.deb.variants.$arch\]" pkcs11-module/cli/Cargo.toml || {
    echo "build-packages: no package variant for $arch in pkcs11-module/cli/Cargo.toml (it names the module folder)" >&2
    exit 1
}
# --strip: the release profile keeps line tables for backtraces during development; the package does not
# need them (a panic's message carries its location without them).
cargo deb --no-build --locked --strip -p cloudtoken-cli --variant "$arch" --output "$out" >/dev/null
cargo deb --no-build --locked --strip -p csc-server --output "$out" >/dev/null

version=$(cargo metadata --format-version 1 --no-deps |
    grep -o '"name":"cloudtoken-cli","version":"[^"]*"' | cut -d'"' -f8)
for pkg in cloudtoken csc-server; do
    deb="$out/${pkg}_${version}_${arch}.deb"
    [ -f "$deb" ] || {
        echo "build-packages: cargo-deb did not write $deb" >&2
        exit 1
    }
    echo "$deb"
done
