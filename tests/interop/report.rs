//! The table the suite prints: client, operation, key, authentication, result, and the reason for every
//! failed row. Written to the terminal unbuffered by the test harness (so CI logs show it on success too)
//! and to `target/<profile>/interop-report.txt`.

use crate::case::Row;
use std::io::Write;

/// Rows a module bug is known to break. Such rows still fail the suite; the entry only puts the finding
/// next to the failure. An empty field matches every row.
pub struct KnownIssue {
    pub client: &'static str,
    /// A prefix of the operation column.
    pub operation: &'static str,
    pub key: &'static str,
    pub finding: &'static str,
}

pub fn render(rows: &[Row], known: &[KnownIssue]) -> String {
    let headers = [
        "client",
        "operation",
        "key",
        "auth",
        "result",
        "secs",
        "checked",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let result = match (&r.outcome, known_issue(r, known)) {
                (Ok(_), _) => "PASS".to_owned(),
                (Err(_), Some(_)) => "FAIL (known module issue)".to_owned(),
                (Err(_), None) => "FAIL".to_owned(),
            };
            [
                r.client.to_owned(),
                r.operation.clone(),
                r.key.clone(),
                r.auth.clone(),
                result,
                format!("{:.1}", r.secs),
                match &r.outcome {
                    Ok(checked) => checked.clone(),
                    Err(e) => e
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(60)
                        .collect(),
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // The last column is free text: not padded.
    widths[6] = headers[6].len();
    let line = |cols: &[String]| -> String {
        cols.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(&headers.map(str::to_owned)));
    out.push('\n');
    out.push_str(&widths.map(|w| "-".repeat(w)).join("-+-"));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    let passed = rows.iter().filter(|r| r.outcome.is_ok()).count();
    out.push_str(&format!("{passed} of {} rows passed\n", rows.len()));
    for r in rows {
        if let Err(e) = &r.outcome {
            out.push_str(&format!(
                "\n=== FAIL {} / {} / {} (files: {})\n",
                r.client,
                r.operation,
                r.key,
                r.dir.display()
            ));
            if let Some(issue) = known_issue(r, known) {
                out.push_str(&format!("known module issue: {}\n", issue.finding));
            }
            out.push_str(e);
            out.push('\n');
        }
    }
    out
}

fn known_issue<'a>(row: &Row, known: &'a [KnownIssue]) -> Option<&'a KnownIssue> {
    known.iter().find(|k| {
        (k.client.is_empty() || k.client == row.client)
            && row.operation.starts_with(k.operation)
            && (k.key.is_empty() || k.key == row.key)
    })
}

/// Shows `text` even though libtest captures the test's output (it captures the print macros, not
/// direct writes to the standard error stream).
pub fn show(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n{text}");
    let _ = err.flush();
}
