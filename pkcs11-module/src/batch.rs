//! The batch a process belongs to, as the environment describes it: how many signatures the whole
//! package needs and what the package is called.
//!
//! A script that signs 30 invoices one process at a time sets them once (or `cloudtoken agent
//! --batch-signatures 60 --batch-description "30 invoices" -- script` does), so that the first process
//! asks the user to authorize the whole package, with words that name it, and the agent hands the rest of
//! that authorization to the processes that follow.

/// Signatures the whole batch needs (capped by the credential's `multisign` where it is used).
pub const SIGNATURES_ENV: &str = "CLOUDTOKEN_BATCH_SIGNATURES";
/// A short name of the package, shown to the user with the authorization request: "30 invoices".
pub const DESCRIPTION_ENV: &str = "CLOUDTOKEN_BATCH_DESCRIPTION";

/// Longest package name kept: the CSC `description` it goes into is at most 500 characters, and the
/// rest of that sentence (count, key label, program) needs room.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The batch size from the environment, if set to a positive number. A value that is not one is
/// ignored with a warning rather than failing the signature.
pub fn signatures() -> Option<u32> {
    let raw = std::env::var(SIGNATURES_ENV).ok()?;
    match parse_signatures(&raw) {
        Some(n) => Some(n),
        None => {
            log::warn!("{SIGNATURES_ENV} is not a positive number; ignored");
            None
        }
    }
}

fn parse_signatures(raw: &str) -> Option<u32> {
    raw.trim().parse::<u32>().ok().filter(|n| *n > 0)
}

/// The package name from the environment, made fit for one line of text shown to a person.
pub fn description() -> Option<String> {
    std::env::var(DESCRIPTION_ENV)
        .ok()
        .and_then(|d| clean_description(&d))
}

/// One line, no control characters (it reaches SMS texts, approval pages and prompt dialogs), bounded.
fn clean_description(raw: &str) -> Option<String> {
    let one_line: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = one_line.split_whitespace().collect();
    let text = words.join(" ");
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(MAX_DESCRIPTION_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_must_be_a_positive_number() {
        assert_eq!(parse_signatures("60"), Some(60));
        assert_eq!(parse_signatures(" 7\n"), Some(7));
        assert_eq!(parse_signatures("0"), None);
        assert_eq!(parse_signatures("-3"), None);
        assert_eq!(parse_signatures("sixty"), None);
    }

    #[test]
    fn description_is_one_bounded_line() {
        assert_eq!(
            clean_description("  30\tinvoices\n(March)\r\n").as_deref(),
            Some("30 invoices (March)")
        );
        assert_eq!(clean_description(" \n\t"), None);
        let long = "x".repeat(1000);
        assert_eq!(
            clean_description(&long).unwrap().chars().count(),
            MAX_DESCRIPTION_CHARS
        );
        assert_eq!(
            clean_description("Rechnungen für März").as_deref(),
            Some("Rechnungen für März")
        );
    }
}
