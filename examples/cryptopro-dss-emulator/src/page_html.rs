//! The confirmation page's HTML (what myDSS shows on the user's phone): maud templates, which escape
//! every value they interpolate, on csc-server's page layout, style sheet, sign-in form, hash list and
//! decision form (no script; the style is allowed by its hash in the Content-Security-Policy).

use crate::confirm::Pending;
use csc_server::api::html::{decision_form, document, hash_list, message_of, sign_in_form, Notice};
use maud::{html, Markup};

const SITE: &str = "CryptoPro DSS emulator";

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    document(
        "Sign in",
        SITE,
        None,
        html! {
            h1 { "Confirm operations" }
            p.muted { "Sign in to see the operations that wait for your confirmation." }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            (sign_in_form("/confirm/login", csrf, None, false))
        },
    )
}

fn when(unix: i64) -> String {
    csc_server::clock::rfc3339(unix)
}

pub fn pending(
    user: &str,
    csrf: &str,
    items: &[Pending],
    now: i64,
    notice: Option<Notice<'static>>,
) -> Markup {
    document(
        "Operations to confirm",
        SITE,
        // An empty list looks again by itself: the next operation shows up without a click.
        items.is_empty().then_some(5),
        html! {
            header {
                h1 { "Operations to confirm" }
                form method="post" action="/confirm/logout" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.link type="submit" { "Sign out " (user) }
                }
            }
            @if let Some(n) = notice {
                p class=(if n.error { "error" } else { "notice" }) role="status" { (n.text) }
            }
            @if items.is_empty() {
                p.muted { "Nothing waits for your confirmation. This page looks again every 5 seconds." }
            }
            @for item in items {
                section.card {
                    h2 {
                        @if item.kind == "session" { "Sign in to the signature service" }
                        @else if item.hashes.len() > 1 { "Sign a package of " (item.hashes.len()) " documents" }
                        @else { "Sign a document" }
                    }
                    dl {
                        @if item.kind == "operation" {
                            dt { "Description" }
                            dd { (item.description.as_deref().unwrap_or("Operation without a description")) }
                        }
                        @if let Some((id, name, kind)) = &item.certificate {
                            dt { "Certificate" }
                            dd { (name) " (ID " (id) ", " (kind) ")" }
                        }
                        @if !item.hashes.is_empty() {
                            dt { "Hashes" }
                            dd { (hash_list(&item.hashes)) }
                        }
                        dt { "Requested" }
                        dd { (when(item.created_at)) " by " (item.client.as_deref().unwrap_or("an unknown client")) }
                        dt { "Answer by" }
                        dd { (when(item.expires_at)) " (" ((item.expires_at - now).max(0)) " s left)" }
                    }
                    (decision_form("/confirm", csrf, &item.id, "Confirm"))
                }
            }
        },
    )
}

pub fn message(title: &str, text: &str) -> Markup {
    message_of(
        SITE,
        ("/confirm", "Back to the confirmation page"),
        title,
        text,
    )
}
