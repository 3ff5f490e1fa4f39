#!/bin/sh
# cloudtoken prompt on the controlling terminal (/dev/tty), for command-line tools (pkcs11-tool, openssl,
# pdfsig in a shell). Standard input and output belong to the module, so the question and the typed
# answer go through /dev/tty; the answer is printed on standard output without echo on the terminal.
# No terminal (a service, a desktop launcher) means cancel.
set -u

# A subshell: a failed redirection would end this shell before it could say why.
if ! (exec 3<>/dev/tty) 2>/dev/null; then
    echo "cloudtoken prompt: no terminal to ask on" >&2
    exit 1
fi

key=${CLOUDTOKEN_KEY_LABEL:-}
[ -n "$key" ] || key=${CLOUDTOKEN_TOKEN_LABEL:-}

# Kind "url": the signing service's authorization page. Shown on the terminal (and opened in a browser
# when there is a graphical session); the module waits for the browser to come back, not for this.
if [ "${CLOUDTOKEN_PROMPT_KIND:-}" = url ]; then
    url=${CLOUDTOKEN_URL:?no CLOUDTOKEN_URL}
    printf '\n%s\nOpen this page in your browser to authorize the signature:\n%s\n' \
        "${CLOUDTOKEN_DESCRIPTION:-}" "$url" >/dev/tty
    if { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; } && command -v xdg-open >/dev/null 2>&1; then
        xdg-open "$url" >/dev/null 2>&1 || true
    fi
    exit 0
fi

case "${CLOUDTOKEN_PROMPT_KIND:-}" in
    pin) question="Signing PIN for '$key': " ;;
    otp)
        case "${CLOUDTOKEN_OTP_TYPE:-}" in
            sms) question="Code the signing service sent to your phone: " ;;
            *) question="Code from your authenticator app: " ;;
        esac
        ;;
    *) echo "cloudtoken prompt: unknown question" >&2; exit 1 ;;
esac

restore() { stty echo </dev/tty 2>/dev/null; }
# The module ends a prompt nobody answers with SIGTERM: leave the terminal echoing.
trap 'restore; printf "\n" >/dev/tty; exit 1' INT TERM HUP

{
    printf '\n%s\n' "${CLOUDTOKEN_DESCRIPTION:-}"
    [ -n "${CLOUDTOKEN_MESSAGE:-}" ] && printf '%s\n' "$CLOUDTOKEN_MESSAGE"
    printf '%s' "$question"
} >/dev/tty
stty -echo </dev/tty 2>/dev/null
answer=
IFS= read -r answer </dev/tty || true
restore
printf '\n' >/dev/tty
[ -n "$answer" ] || exit 1
printf '%s\n' "$answer"
