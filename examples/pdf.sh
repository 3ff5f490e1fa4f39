# make_pdf FILE TEXT: writes a one-page PDF showing TEXT, with a correct cross-reference table, for the
# demos (examples/demo.sh, examples/batch-sign.sh, examples/demo-globalsign.sh) to sign; pdf_signed_bytes
# SIGNED OUT: writes the bytes the last signature of SIGNED covers (its /ByteRange) to OUT, for
# `openssl cms -verify -content OUT`. Sourced, not run.
make_pdf() {
    local LC_ALL=C text=$2 pdf i xref
    local content="BT /F1 16 Tf 72 720 Td ($text) Tj ET"
    local objs=("<< /Type /Catalog /Pages 2 0 R >>" "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
        "<< /Length ${#content} >>"$'\nstream\n'"$content"$'\nendstream'
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    local offsets=()
    pdf=$'%PDF-1.7\n'
    for i in "${!objs[@]}"; do
        offsets+=("${#pdf}")
        pdf+="$((i + 1)) 0 obj"$'\n'"${objs[i]}"$'\nendobj\n'
    done
    xref=${#pdf}
    pdf+="xref"$'\n'"0 6"$'\n'"0000000000 65535 f "$'\n'
    for i in "${offsets[@]}"; do pdf+=$(printf '%010d 00000 n ' "$i")$'\n'; done
    pdf+="trailer"$'\n'"<< /Size 6 /Root 1 0 R >>"$'\n'"startxref"$'\n'"$xref"$'\n'"%%EOF"$'\n'
    printf '%s' "$pdf" >"$1"
}

pdf_signed_bytes() {
    local a b c d
    read -r a b c d < <(grep -ao '/ByteRange *\[[0-9 ]*\]' "$1" | tail -1 | tr -dc '0-9 \n')
    { head -c $((a + b)) "$1"; tail -c "+$((c + 1))" "$1" | head -c "$d"; } >"$2"
}
