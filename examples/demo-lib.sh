# What the demo scripts share (examples/demo.sh, batch-sign.sh, demo-globalsign.sh, demo-cryptopro.sh).
# Sourced, not run.

# say TEXT: one bold line of the demo's story.
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# quiet COMMAND...: runs COMMAND, showing its output only when it fails (then the script stops), so that
# a demo stays a few readable lines.
quiet() {
    local out status=0
    out=$("$@" 2>&1) || status=$?
    [ "$status" -eq 0 ] && return 0
    printf '%s\n' "$out" >&2
    # Above 128: the program was killed by signal (status - 128), which prints nothing itself.
    echo "${0##*/}: failed (exit status $status): $*" >&2
    exit 1
}

# wait_for_url STATE LOG: waits (10 s at most) for a reference service to write STATE/server.url; shows
# LOG and fails when it does not.
wait_for_url() {
    for _ in $(seq 100); do [ -s "$1/server.url" ] && return 0; sleep 0.1; done
    echo "the service did not start:" >&2
    cat "$2" >&2
    exit 1
}

# built_binaries [CARGO ARGS...]: sets `bin` to the folder of the release binaries: CLOUDTOKEN_BIN_DIR
# when set (the tests pass the binaries they built, tests/demos.rs), otherwise after building here
# (`cargo build --release` of the packages named by the arguments, default the whole workspace).
built_binaries() {
    if [ -n "${CLOUDTOKEN_BIN_DIR:-}" ]; then
        bin=$(cd "$CLOUDTOKEN_BIN_DIR" && pwd)
        return
    fi
    say "building the release binaries"
    cargo build --release --locked --quiet "${@:---workspace}"
    bin="${CARGO_TARGET_DIR:-$root/target}/release"
}
