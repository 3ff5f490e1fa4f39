#!/bin/sh
# cloudtoken test prompt: answers the module's questions from files instead of a person, and records
# every question. For tests and demos only: it reads the PIN from a file and the one-time password from
# the reference service's "demo phone" (`csc-server demo-otp`). The integration tests use this very file.
#
# prompt_command = ["/path/to/examples/prompt/test-prompt.sh", "DIR"], where DIR holds:
#   pin          the PIN to answer (first line)
#   state        the csc-server state folder (first line)
#   csc-server   optional: the csc-server binary (first line; default: csc-server from PATH)
#   plan         optional: what to do for each question, one word per line, used up from the top:
#                  right   answer correctly (also what happens once the plan is used up)
#                  wrong   answer a value of the right shape that is not the right one
#                  cancel  exit with status 1, as when the user presses Cancel
#                  empty   answer an empty line
#                  hang    never answer (the module's prompt_timeout_ms ends it)
# Each question is appended to DIR/questions as one line of tab-separated key=value fields (never an
# answer).
#
# Kind "url" (an authorization page at the service, CLOUDTOKEN_URL) asks nothing: the page's address is
# appended to DIR/urls for the test to open in a browser, and the plan step decides the exit (right:
# 0, cancel: 1, hang: never).
set -eu
dir=${1:?usage: test-prompt.sh DIR}

first_line() { head -n 1 "$1"; }

printf 'kind=%s\ttoken=%s\tkey=%s\tcredential=%s\tsignatures=%s\tprocess=%s\tdescription=%s\totp_type=%s\tattempt=%s\tmessage=%s\n' \
    "${CLOUDTOKEN_PROMPT_KIND:-}" "${CLOUDTOKEN_TOKEN_LABEL:-}" "${CLOUDTOKEN_KEY_LABEL:-}" \
    "${CLOUDTOKEN_CREDENTIAL_ID:-}" "${CLOUDTOKEN_SIGNATURES:-}" "${CLOUDTOKEN_PROCESS:-}" \
    "${CLOUDTOKEN_DESCRIPTION:-}" "${CLOUDTOKEN_OTP_TYPE:-}" "${CLOUDTOKEN_ATTEMPT:-}" \
    "${CLOUDTOKEN_MESSAGE:-}" >>"$dir/questions"

action=right
if [ -s "$dir/plan" ]; then
    action=$(first_line "$dir/plan")
    tail -n +2 "$dir/plan" >"$dir/plan.next"
    mv "$dir/plan.next" "$dir/plan"
fi

if [ "${CLOUDTOKEN_PROMPT_KIND:-}" = url ]; then
    case "$action" in
        cancel) exit 1 ;;
        hang) exec sleep 3600 ;;
    esac
    printf '%s\n' "${CLOUDTOKEN_URL:?no CLOUDTOKEN_URL}" >>"$dir/urls"
    exit 0
fi

case "$action" in
    cancel) exit 1 ;;
    empty) echo; exit 0 ;;
    hang) exec sleep 3600 ;;
    right | wrong) ;;
    *) echo "test-prompt.sh: unknown plan step '$action'" >&2; exit 2 ;;
esac

# The right answer.
case "${CLOUDTOKEN_PROMPT_KIND:-}" in
    pin)
        answer=$(first_line "$dir/pin")
        ;;
    otp)
        server=csc-server
        [ -s "$dir/csc-server" ] && server=$(first_line "$dir/csc-server")
        state=$(first_line "$dir/state")
        cred=${CLOUDTOKEN_CREDENTIAL_ID:?no credential}
        answer=$("$server" demo-otp --state "$state" --credential "$cred")
        # An authenticator code works once (RFC 6238 5.2): like a person, wait for the next one when
        # this one was already given.
        if [ "${CLOUDTOKEN_OTP_TYPE:-}" = totp ] && [ -f "$dir/last-$cred" ]; then
            tries=0
            while [ "$answer" = "$(first_line "$dir/last-$cred")" ] && [ $tries -lt 400 ]; do
                sleep 0.25
                tries=$((tries + 1))
                answer=$("$server" demo-otp --state "$state" --credential "$cred")
            done
        fi
        [ "$action" = right ] && printf '%s\n' "$answer" >"$dir/last-$cred"
        ;;
    *)
        echo "test-prompt.sh: unknown CLOUDTOKEN_PROMPT_KIND" >&2
        exit 2
        ;;
esac

if [ "$action" = wrong ]; then
    # Same length and characters, last digit changed.
    last=${answer#"${answer%?}"}
    case "$last" in 9) new=0 ;; [0-8]) new=$((last + 1)) ;; *) new=9 ;; esac
    answer="${answer%?}$new"
fi
printf '%s\n' "$answer"
