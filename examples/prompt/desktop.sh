#!/bin/sh
# cloudtoken prompt for a desktop session: a password dialog from zenity (GNOME, most desktops) or
# kdialog (KDE). Configure it as the token's prompt_command; the module gives the question in CLOUDTOKEN_*
# variables and reads the answer from standard output. Cancel or closing the dialog cancels the signature.
set -u

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "cloudtoken prompt: no graphical session (DISPLAY and WAYLAND_DISPLAY are unset)" >&2
    exit 1
fi

key=${CLOUDTOKEN_KEY_LABEL:-}
[ -n "$key" ] || key=${CLOUDTOKEN_TOKEN_LABEL:-}

# Kind "url": the signing service's authorization page, opened in the user's browser; the module waits
# for the browser, not for this script. Without a browser the address is shown to copy.
if [ "${CLOUDTOKEN_PROMPT_KIND:-}" = url ]; then
    url=${CLOUDTOKEN_URL:?no CLOUDTOKEN_URL}
    if command -v xdg-open >/dev/null 2>&1 && xdg-open "$url" >/dev/null 2>&1; then
        exit 0
    fi
    text="${CLOUDTOKEN_DESCRIPTION:-}

Open this page in your browser to authorize the signature:
$url"
    if command -v zenity >/dev/null 2>&1; then
        markup=$(printf '%s' "$text" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
        exec zenity --info --title "Signature: ${CLOUDTOKEN_TOKEN_LABEL:-cloudtoken}" --text "$markup"
    elif command -v kdialog >/dev/null 2>&1; then
        exec kdialog --title "Signature: ${CLOUDTOKEN_TOKEN_LABEL:-cloudtoken}" --msgbox "$text"
    fi
    echo "cloudtoken prompt: install xdg-utils, zenity or kdialog, or use examples/prompt/terminal.sh" >&2
    exit 1
fi

case "${CLOUDTOKEN_PROMPT_KIND:-}" in
    pin) question="Signing PIN for '$key':" ;;
    otp)
        case "${CLOUDTOKEN_OTP_TYPE:-}" in
            sms) question="Code the signing service sent to your phone:" ;;
            *) question="Code from your authenticator app:" ;;
        esac
        ;;
    *) echo "cloudtoken prompt: unknown question" >&2; exit 1 ;;
esac
title="Signature: ${CLOUDTOKEN_TOKEN_LABEL:-cloudtoken}"
text="${CLOUDTOKEN_DESCRIPTION:-}"
if [ -n "${CLOUDTOKEN_MESSAGE:-}" ]; then
    text="$text

${CLOUDTOKEN_MESSAGE}"
fi
text="$text

$question"

if command -v zenity >/dev/null 2>&1; then
    # zenity reads Pango markup: labels and program names must not be taken for it.
    markup=$(printf '%s' "$text" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
    exec zenity --entry --hide-text --title "$title" --text "$markup"
elif command -v kdialog >/dev/null 2>&1; then
    exec kdialog --title "$title" --password "$text"
fi
echo "cloudtoken prompt: install zenity or kdialog, or use examples/prompt/terminal.sh" >&2
exit 1
