//! The PDF side of the PDF-signing rows: a small valid one-page document to sign, and the bytes a PDF
//! signature covers (its /ByteRange), so that `openssl cms` can check the signature pdfsig embedded.

/// A one-page PDF 1.7 with one line of text and a correct cross-reference table.
pub fn one_page(text: &str) -> Vec<u8> {
    let escaped: String = text
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    let content = format!("BT /F1 16 Tf 72 720 Td ({escaped}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        tail.push_str(&format!("{o:010} 00000 n \n"));
    }
    tail.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.extend_from_slice(tail.as_bytes());
    pdf
}

/// The bytes the last signature of `pdf` covers: the concatenation of its /ByteRange pieces.
pub fn signed_bytes(pdf: &[u8]) -> Result<Vec<u8>, String> {
    const KEY: &[u8] = b"/ByteRange";
    let at = pdf
        .windows(KEY.len())
        .rposition(|w| w == KEY)
        .ok_or("the signed PDF has no /ByteRange")?;
    let rest = &pdf[at + KEY.len()..];
    let open = rest
        .iter()
        .position(|&b| b == b'[')
        .ok_or("bad /ByteRange")?;
    let close = rest
        .iter()
        .position(|&b| b == b']')
        .ok_or("bad /ByteRange")?;
    let numbers: Vec<usize> = std::str::from_utf8(&rest[open + 1..close])
        .map_err(|_| "bad /ByteRange")?
        .split_whitespace()
        .map(|n| {
            n.parse::<usize>()
                .map_err(|_| format!("bad /ByteRange number {n:?}"))
        })
        .collect::<Result<_, _>>()?;
    if numbers.len() != 4 {
        return Err(format!("/ByteRange has {} numbers, not 4", numbers.len()));
    }
    let (a, b, c, d) = (numbers[0], numbers[1], numbers[2], numbers[3]);
    // Two pieces: from the start of the file to the /Contents hole, and from its end to the end of file.
    if a != 0 || a + b > c || c + d != pdf.len() {
        return Err(format!(
            "/ByteRange [{a} {b} {c} {d}] does not cover the whole {}-byte file",
            pdf.len()
        ));
    }
    let mut out = pdf[a..a + b].to_vec();
    out.extend_from_slice(&pdf[c..c + d]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_range_pieces_are_joined() {
        let pdf = b"abcdXXXX/ByteRange [0 4 8 25]efgh";
        assert_eq!(pdf.len(), 33);
        assert_eq!(signed_bytes(pdf).unwrap(), b"abcd/ByteRange [0 4 8 25]efgh");
        // A range that leaves bytes after the signature unsigned is refused.
        assert!(signed_bytes(b"abcdXXXX/ByteRange [0 4 8 24]efgh").is_err());
    }

    #[test]
    fn one_page_has_a_consistent_xref() {
        let pdf = one_page("Invoice (42)");
        let text = String::from_utf8_lossy(&pdf);
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n"));
        assert!(text.contains("(Invoice \\(42\\))"));
    }
}
