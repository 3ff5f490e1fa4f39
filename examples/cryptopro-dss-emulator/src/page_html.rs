//! The confirmation page's HTML (what myDSS shows on the user's phone): maud templates, which escape
//! every value they interpolate, on csc-server's page layout and style sheet (no script; the style is
//! allowed by its hash in the Content-Security-Policy).

use crate::confirm::Pending;
use csc_server::api::html::{document, hex, message_of, short_hex, Notice};
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
            form.card method="post" action="/confirm/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "User name" }
                input #username type="text" name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                label for="code" { "Code from your authenticator app" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                button.primary type="submit" { "Sign in" }
            }
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
                            dd {
                                ol {
                                    @for h in item.hashes.iter().take(10) {
                                        li { code title=(hex(h)) { (short_hex(h)) } }
                                    }
                                }
                                @if item.hashes.len() > 10 {
                                    span.muted { "and " (item.hashes.len() - 10) " more" }
                                }
                            }
                        }
                        dt { "Requested" }
                        dd { (when(item.created_at)) " by " (item.client.as_deref().unwrap_or("an unknown client")) }
                        dt { "Answer by" }
                        dd { (when(item.expires_at)) " (" ((item.expires_at - now).max(0)) " s left)" }
                    }
                    form.actions method="post" action="/confirm/decide" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="request" value=(item.id);
                        button.approve type="submit" name="decision" value="approve" { "Confirm" }
                        button.decline type="submit" name="decision" value="decline" { "Decline" }
                    }
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
