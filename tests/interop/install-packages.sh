#!/usr/bin/env bash
# Installs the Debian packages given as arguments when they are missing: as root with apt-get (adding the
# bookworm-backports source first when pkcs11-provider is wanted on Debian 12, the only place it is
# packaged for bookworm); otherwise prints the exact commands to run and fails.
#
#   tests/interop/install-packages.sh opensc openssl pkcs11-provider ...
set -euo pipefail

missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

backports=
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [[ " ${missing[*]} " == *" pkcs11-provider "* && $codename == bookworm ]]; then
    backports=bookworm-backports
fi
backports_file=/etc/apt/sources.list.d/bookworm-backports.sources
plain=()
for pkg in "${missing[@]}"; do
    [ -n "$backports" ] && [ "$pkg" = pkcs11-provider ] || plain+=("$pkg")
done

has_backports() {
    grep -qs "^[^#]*$backports" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

# The machine's own Debian mirror (deb822 or one-line sources), so the backports come from the same place.
debian_mirror() {
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 ~ /^bookworm(-updates)?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    {
        echo "missing Debian packages: ${missing[*]}; install them with:"
        if [ -n "$backports" ] && ! has_backports; then
            printf "  printf 'Types: deb\\\\nURIs: %s\\\\nSuites: %s\\\\nComponents: main\\\\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\\\\n' | sudo tee %s\n" \
                "$(debian_mirror)" "$backports" "$backports_file"
        fi
        echo "  sudo apt-get update"
        ((${#plain[@]} == 0)) || echo "  sudo apt-get install -y ${plain[*]}"
        [ -z "$backports" ] || echo "  sudo apt-get install -y -t $backports pkcs11-provider"
    } >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ -n "$backports" ] && ! has_backports; then
    echo "install-packages: adding the $backports source ($(debian_mirror))"
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$(debian_mirror)" "$backports" >"$backports_file"
fi
echo "install-packages: installing ${missing[*]}"
apt-get update -q
((${#plain[@]} == 0)) || apt-get install -y -q --no-install-recommends "${plain[@]}"
[ -z "$backports" ] || apt-get install -y -q --no-install-recommends -t "$backports" pkcs11-provider
