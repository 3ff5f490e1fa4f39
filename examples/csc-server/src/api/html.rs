//! The approval page's HTML: server-rendered with maud, which escapes every value it interpolates. No
//! script; one inline style sheet, allowed by its hash in the Content-Security-Policy. [`document`], the
//! style sheet and the parts every page shows alike (the sign-in form, the list of hashes, the decision
//! form) serve the OAuth 2.0 pages and the other reference services' pages too.

use crate::algorithms::HashAlg;
use crate::service::approvals::PendingRequest;
use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f3f4f6;color:#111827}\
main{max-width:46rem;margin:0 auto;padding:1.5rem}\
header{display:flex;justify-content:space-between;align-items:center;gap:1rem}\
h1{font-size:1.4rem;margin:.5rem 0}\
h2{font-size:1.1rem;margin:0 0 .75rem}\
.card{background:#fff;border:1px solid #d1d5db;border-radius:.5rem;padding:1rem 1.25rem;margin:1rem 0}\
dl{display:grid;grid-template-columns:10rem 1fr;gap:.35rem .75rem;margin:0 0 1rem}\
dt{color:#4b5563}dd{margin:0;overflow-wrap:anywhere}\
ol{margin:0;padding-left:1.25rem}code{font-size:.9rem}\
.muted{color:#6b7280;font-size:.9rem}\
label{display:block;margin:.75rem 0 .25rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;\
border:1px solid #9ca3af;border-radius:.375rem}\
button{font-size:1rem;padding:.5rem 1.25rem;border-radius:.375rem;border:1px solid transparent;cursor:pointer}\
.actions{display:flex;gap:.75rem}\
.approve{background:#15803d;color:#fff}.decline{background:#fff;color:#b91c1c;border-color:#b91c1c}\
.primary{background:#1d4ed8;color:#fff;margin-top:1rem}.link{background:none;color:#1d4ed8;padding:0}\
.notice{padding:.75rem 1rem;border-radius:.375rem;background:#e0f2fe;border:1px solid #7dd3fc}\
.error{padding:.75rem 1rem;border-radius:.375rem;background:#fee2e2;border:1px solid #fca5a5}";

/// The Content-Security-Policy of every page: nothing but the style sheet above, and forms that post
/// back here. `frame-ancestors` keeps the Approve button out of other sites' frames.
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| policy_with_form_action(""))
}

/// The policy with one more place forms may lead to: the OAuth 2.0 consent form's answer redirects to
/// the client (browsers apply `form-action` to the redirect too). `origin` is a checked URL origin.
pub fn policy_with_form_action(origin: &str) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    let extra = if origin.is_empty() {
        String::new()
    } else {
        format!(" {origin}")
    };
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'{extra}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A whole page: `title` (shown as "title — site"), an optional self-refresh, the shared style sheet.
pub fn document(title: &str, site: &str, refresh_secs: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = refresh_secs {
                    meta http-equiv="refresh" content=(s);
                }
                title { (title) " — " (site) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
}

const SITE: &str = "cloudtoken approval";

pub(super) fn page(title: &str, refresh_secs: Option<u32>, body: Markup) -> Markup {
    document(title, SITE, refresh_secs, body)
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Approve signatures" }
            p.muted {
                "Sign in to see the signature requests that wait for your approval."
            }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            (sign_in_form("/approve/login", csrf, None, true))
        },
    )
}

/// The sign-in form of every page (what it posts, sign_in.rs checks): the CSRF token, the `request` it
/// belongs to if any, user name, account password, authenticator code (held to six digits by the
/// browser when `six_digit_code`).
pub fn sign_in_form(
    action: &str,
    csrf: &str,
    request: Option<&str>,
    six_digit_code: bool,
) -> Markup {
    html! {
        form.card method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(id) = request {
                input type="hidden" name="request" value=(id);
            }
            label for="username" { "User name" }
            input #username type="text" name="username" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            label for="code" { "Code from your authenticator app" }
            input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                pattern=[six_digit_code.then_some("[0-9]{6}")]
                maxlength=[six_digit_code.then_some("6")] required;
            button.primary type="submit" { "Sign in" }
        }
    }
}

/// What the list page says above the requests.
pub struct Notice<'a> {
    pub text: &'a str,
    pub error: bool,
}

pub fn requests(
    user: &str,
    csrf: &str,
    requests: &[PendingRequest],
    now: i64,
    notice: Option<Notice<'_>>,
) -> Markup {
    // An empty list reloads itself so that a new request shows up; a list with requests stays still
    // so that nothing moves under the person's pointer.
    let refresh = requests.is_empty().then_some(5);
    page(
        "Requests",
        refresh,
        html! {
            header {
                h1 { "Signature requests" }
                form method="post" action="/approve/logout" {
                    input type="hidden" name="csrf" value=(csrf);
                    span.muted { "Signed in as " strong { (user) } " · " }
                    button.link type="submit" { "Sign out" }
                }
            }
            @if let Some(n) = notice {
                @if n.error { p.error role="alert" { (n.text) } } @else { p.notice role="status" { (n.text) } }
            }
            @if requests.is_empty() {
                p.card.muted { "No request is waiting for your approval. This page reloads by itself." }
            }
            @for r in requests {
                (request_card(csrf, r, now))
            }
        },
    )
}

/// Hash values shown of a request; the rest are counted.
const SHOWN_HASHES: usize = 10;

/// The hashes a person decides on: the first [`SHOWN_HASHES`], shortened (the full value in the
/// title), and how many more.
pub fn hash_list(hashes: &[Vec<u8>]) -> Markup {
    html! {
        ol {
            @for h in hashes.iter().take(SHOWN_HASHES) {
                li { code title=(hex(h)) { (short_hex(h)) } }
            }
        }
        @if hashes.len() > SHOWN_HASHES {
            span.muted { "and " (hashes.len() - SHOWN_HASHES) " more" }
        }
    }
}

/// The hash algorithm a page names: the request's `oid`, else the one the hashes' length implies.
pub fn shown_alg(oid: Option<&str>, hashes: &[Vec<u8>]) -> Option<HashAlg> {
    oid.and_then(HashAlg::from_oid)
        .or_else(|| hashes.first().and_then(|h| HashAlg::from_len(h.len())))
}

/// The form that answers a decision page (`PATH/decide`, see decision_page) about `request`:
/// `decision=approve` under the label `approve`, or `decision=decline`.
pub fn decision_form(path: &str, csrf: &str, request: &str, approve: &str) -> Markup {
    html! {
        form.actions method="post" action=(format!("{path}/decide")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="request" value=(request);
            button.approve type="submit" name="decision" value="approve" { (approve) }
            button.decline type="submit" name="decision" value="decline" { "Decline" }
        }
    }
}

fn request_card(csrf: &str, p: &PendingRequest, now: i64) -> Markup {
    let r = &p.request;
    let alg = shown_alg(r.hash_algo.as_deref(), &r.hashes);
    let documents = if r.num_signatures == 1 {
        "1 document".to_owned()
    } else {
        format!("{} documents", r.num_signatures)
    };
    html! {
        article.card {
            h2 { (r.description.as_deref().unwrap_or("Signature request without a description")) }
            dl {
                dt { "Key" }
                dd { (p.credential_label) br; span.muted { (r.credential) ", SCAL " (p.scal) } }
                dt { "To sign" }
                dd { (documents) }
                dt {
                    @if r.hashes.len() == 1 { "Hash" } @else { "Hashes" }
                    @if let Some(a) = alg { " (" (a.name()) ")" }
                }
                dd {
                    @if r.hashes.is_empty() {
                        span.muted { "Not sent: this approves a batch of up to " (r.num_signatures)
                            " signatures of any documents." }
                    } @else {
                        (hash_list(&r.hashes))
                    }
                }
                dt { "Requested" }
                dd {
                    (clock(r.created_at)) " UTC"
                    @if let Some(c) = &r.client { br; span.muted { "by " (c) } }
                }
                dt { "Answer by" }
                dd { (clock(r.expires_at)) " UTC " span.muted { "(" (remaining(r.expires_at - now)) ")" } }
            }
            (decision_form("/approve", csrf, &r.id, "Approve"))
        }
    }
}

/// A page with one message and a way back.
pub fn message(title: &str, text: &str) -> Markup {
    message_of(SITE, ("/approve", "Back to the approval page"), title, text)
}

/// A page of `site` with one message and a link back (`href`, text).
pub fn message_of(site: &str, back: (&str, &str), title: &str, text: &str) -> Markup {
    document(
        title,
        site,
        None,
        html! {
            h1 { (title) }
            p.error role="alert" { (text) }
            p { a href=(back.0) { (back.1) } }
        },
    )
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The first 8 and last 4 bytes, enough to compare with what the signing application shows; the full
/// value is in the element's title.
pub fn short_hex(b: &[u8]) -> String {
    let full = hex(b);
    if full.len() <= 32 {
        return full;
    }
    format!("{}…{}", &full[..16], &full[full.len() - 8..])
}

/// HH:MM:SS (UTC): requests live for minutes, so the time of day is what a person compares with
/// their clock.
fn clock(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn remaining(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s} s left"),
        s => format!("{} min {} s left", s / 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::Request;

    fn pending(description: &str, hashes: Vec<Vec<u8>>) -> PendingRequest {
        PendingRequest {
            request: Request {
                id: "req-1".into(),
                credential: "alice-p256-approve".into(),
                num_signatures: hashes.len().max(1) as u32,
                hashes,
                bound: true,
                hash_algo: Some("2.16.840.1.101.3.4.2.1".into()),
                description: Some(description.into()),
                client: Some("127.0.0.1, <b>agent</b>".into()),
                created_at: 1_800_000_000,
                expires_at: 1_800_000_120,
            },
            credential_label: "Alice \"Example\"".into(),
            scal: 2,
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let evil = "<script>alert(1)</script>\" onmouseover=\"x";
        let page = requests(
            "alice<",
            "csrf\"token",
            &[pending(evil, vec![vec![0xab; 32]])],
            1_800_000_010,
            Some(Notice {
                text: "<i>done</i>",
                error: false,
            }),
        )
        .into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;x"));
        assert!(page.contains("&lt;b&gt;agent&lt;/b&gt;"));
        assert!(page.contains("value=\"csrf&quot;token\""));
        assert!(page.contains("alice&lt;"));
        assert!(page.contains("&lt;i&gt;done&lt;/i&gt;"));
        assert!(page.contains("Alice &quot;Example&quot;"));
        assert!(!login("x\"><script>", Some("<b>"))
            .into_string()
            .contains("<script>"));
    }

    #[test]
    fn request_card_shows_what_the_person_decides_on() {
        let hashes: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 32]).collect();
        let page = requests(
            "alice",
            "t",
            &[pending("Sign contract.pdf", hashes)],
            1_800_000_045,
            None,
        )
        .into_string();
        assert!(page.contains("Sign contract.pdf"));
        assert!(page.contains("12 documents"));
        assert!(page.contains("(SHA-256)"));
        // The first ten are shown, shortened, with the full value in the title.
        assert!(page.contains(&format!("title=\"{}\"", "09".repeat(32))));
        assert!(page.contains(&format!("{}…{}", "01".repeat(8), "01".repeat(4))));
        assert!(!page.contains(&"0a".repeat(8)));
        assert!(page.contains("and 2 more"));
        assert!(page.contains("1 min 15 s left"));
        assert!(page.contains("name=\"request\" value=\"req-1\""));
        assert!(page.contains(">Approve<") && page.contains(">Decline<"));
        // Requests on the page: no self-reload.
        assert!(!page.contains("http-equiv=\"refresh\""));
        assert!(requests("alice", "t", &[], 0, None)
            .into_string()
            .contains("http-equiv=\"refresh\""));
    }

    #[test]
    fn the_sign_in_form_holds_the_code_to_six_digits_only_when_asked() {
        let six = sign_in_form("/approve/login", "t", None, true).into_string();
        assert!(six.contains(r#"action="/approve/login""#), "{six}");
        assert!(
            six.contains(
                r#"autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required"#
            ),
            "{six}"
        );
        assert!(!six.contains(r#"name="request""#));
        let any = sign_in_form("/oauth2/authorize/login", "t", Some("r\"1"), false).into_string();
        assert!(
            any.contains(r#"autocomplete="one-time-code" required"#),
            "{any}"
        );
        assert!(any.contains(r#"name="request" value="r&quot;1""#), "{any}");
        let decide = decision_form("/confirm", "t", "op-1", "Confirm").into_string();
        assert!(decide.contains(r#"action="/confirm/decide""#), "{decide}");
        assert!(decide.contains(r#"value="approve">Confirm<"#), "{decide}");
    }

    #[test]
    fn the_policy_allows_exactly_the_style_sheet() {
        let csp = content_security_policy();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        assert!(csp.contains(&format!("'sha256-{hash}'")));
        assert!(csp.starts_with("default-src 'none'"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
