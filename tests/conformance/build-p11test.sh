#!/usr/bin/env bash
# Builds OpenSC's PKCS#11 conformance suite, p11test, from Debian's own `opensc` source package (the
# version this machine's mirror has), for tests/conformance.rs:
#   - adds a deb-src entry for the machine's Debian mirror when there is none (the deb lines of
#     /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list, as deb-src),
#   - installs what building p11test needs (dpkg-dev for `apt-get source`, autotools, a compiler,
#     OpenSSL and cmocka headers),
#   - `apt-get source opensc` into ${CARGO_TARGET_DIR:-target}/conformance/ and builds only
#     src/tests/p11test (its configure: no PC/SC, readline, zlib, docs; CT-API as the one reader driver
#     configure insists on),
#   - adapts one assumption of its interface_test to this module: it expects OpenSC's own second
#     interface, PKCS#11 2.20, where cloudtoken's is 2.40 (the version of its C_GetFunctionList); every
#     other check of that test (count, names, flags, default 3.0, unknown name/version/flags) stays,
#   - copies the program to ${CARGO_TARGET_DIR:-target}/conformance/p11test-cloudtoken.
# Nothing is rebuilt when that program exists. Needs root for apt-get; otherwise prints the commands.
set -euo pipefail
cd "$(dirname "$0")/../.."

target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
work="$target/conformance"
out="$work/p11test-cloudtoken"
if [ -x "$out" ]; then
    echo "build-p11test: $out is there"
    exit 0
fi

packages=(dpkg-dev autoconf automake libtool pkg-config make gcc libssl-dev libcmocka-dev)
src_list=/etc/apt/sources.list.d/cloudtoken-deb-src.sources

has_deb_src() {
    grep -qs '^deb-src\|^Types:.*deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources
}

# The machine's own deb entries as deb-src (deb822 stanzas, or one-line entries converted to deb822).
deb_src_entries() {
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources
    elif [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" {
            i = 2; opts = "";
            if ($2 ~ /^\[/) { opts = $2; i = 3 }
            printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", $i, $(i + 1);
            for (j = i + 2; j <= NF; j++) printf " %s", $j;
            printf "\n\n" }' /etc/apt/sources.list
    fi
}

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    {
        echo "build-p11test: needs root (apt-get) to build p11test; as root run:"
        has_deb_src || echo "  (a deb-src entry for your mirror in $src_list, see deb_src_entries in $0)"
        echo "  apt-get update && apt-get install -y ${packages[*]}"
        echo "  bash $0"
    } >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! has_deb_src; then
    echo "build-p11test: adding deb-src entries for this machine's mirror ($src_list)"
    deb_src_entries >"$src_list"
    [ -s "$src_list" ] || { echo "build-p11test: no Debian deb entry to derive a deb-src from" >&2; exit 1; }
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"

rm -rf "$work/source"
mkdir -p "$work/source"
(cd "$work/source" && apt-get source -q opensc)
srcdir=$(find "$work/source" -mindepth 1 -maxdepth 1 -type d -name 'opensc-*' | head -n 1)
[ -n "$srcdir" ] || { echo "build-p11test: apt-get source opensc unpacked nothing" >&2; exit 1; }
echo "build-p11test: building p11test from $(basename "$srcdir")"
case_file="$srcdir/src/tests/p11test/p11test_case_interface.c"
sed -i -e 's/->minor, 20);/->minor, 40);/' -e 's/version\.minor = 20;/version.minor = 40;/' "$case_file"
if grep -q 'minor, 20)\|minor = 20;' "$case_file" || ! grep -q 'version.minor = 40;' "$case_file"; then
    echo "build-p11test: $case_file no longer has the 2.20 checks this script adapts; look again" >&2
    exit 1
fi
(
    cd "$srcdir"
    autoreconf --install --force >"$work/autoreconf.log" 2>&1
    ./configure --disable-pcsc --enable-ctapi --disable-readline --disable-zlib --disable-man \
        --disable-doc --disable-notify --disable-sm --enable-cmocka --enable-openssl \
        >"$work/configure.log" 2>&1
    make -C src/tests/p11test >"$work/make.log" 2>&1
) || {
    echo "build-p11test: the build failed; logs in $work (autoreconf.log, configure.log, make.log)" >&2
    exit 1
}
cp "$srcdir/src/tests/p11test/p11test" "$out"
echo "build-p11test: built $out"
