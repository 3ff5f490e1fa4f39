//! The OAuth 2.0 sign-in and consent pages: maud templates in the approval page's frame and style, so
//! every value is escaped and no script runs.

use super::html::{hash_list, page, shown_alg, sign_in_form};
use crate::oauth2::{Request, Scope};
use maud::{html, Markup};

/// What the request asks, as the person reads it.
fn asked(r: &Request) -> Markup {
    match &r.scope {
        Scope::Service => html! {
            p { "Sign in to your signing account, so that the application can list your keys and "
                "ask for signatures. Every signature still needs your authorization." }
        },
        Scope::Credential(g) => {
            let alg = shown_alg(g.hash_algo.as_deref(), &g.hashes);
            html! {
                dl {
                    dt { "Key" }
                    dd { (g.credential_id) }
                    dt { "Signatures" }
                    dd { (g.num_signatures) }
                    @if let Some(d) = &g.description {
                        dt { "Description" }
                        dd { (d) }
                    }
                    dt {
                        "Documents"
                        @if let Some(a) = alg { " (" (a.name()) ")" }
                    }
                    dd {
                        @if g.hashes.is_empty() {
                            span.muted { "Not sent: this authorizes up to " (g.num_signatures)
                                " signatures of any documents." }
                        } @else {
                            (hash_list(&g.hashes))
                        }
                    }
                }
            }
        }
    }
}

fn heading(r: &Request) -> &'static str {
    match r.scope {
        Scope::Service => "Sign in to your signing account",
        Scope::Credential(_) => "Authorize signatures",
    }
}

/// The sign-in form of request `id`: user name, account password, authenticator code.
pub fn login(csrf: &str, id: &str, r: &Request, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { (heading(r)) }
            p.muted { "The application " strong { (r.client_name) } " (" (r.client_id) ") asks:" }
            div.card { (asked(r)) }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            (sign_in_form("/oauth2/authorize/login", csrf, Some(id), true))
        },
    )
}

/// The consent page of request `id` for the signed-in `user`.
pub fn consent(user: &str, csrf: &str, id: &str, r: &Request) -> Markup {
    page(
        "Consent",
        None,
        html! {
            h1 { (heading(r)) }
            p.muted { "Signed in as " strong { (user) } ". The application " strong { (r.client_name) }
                " (" (r.client_id) ") asks:" }
            article.card {
                (asked(r))
                p.muted { "Your answer goes back to " code { (r.redirect_uri) } }
                form.actions method="post" action="/oauth2/authorize/decide" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="request" value=(id);
                    button.approve #allow type="submit" name="decision" value="allow" { "Allow" }
                    button.decline #deny type="submit" name="decision" value="deny" { "Deny" }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth2::CredentialGrant;

    fn request(scope: Scope) -> Request {
        Request {
            client_id: "cloudtoken<desktop>".into(),
            client_name: "\"Evil\" <b>app</b>".into(),
            redirect_uri: "http://127.0.0.1:9/callback?x=<y>".into(),
            state: None,
            code_challenge: "c".into(),
            scope,
            user: None,
            expires_at: 0,
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let r = request(Scope::Credential(CredentialGrant {
            credential_id: "<script>x</script>".into(),
            num_signatures: 1,
            hashes: vec![vec![0xab; 32]],
            hash_algo: Some("2.16.840.1.101.3.4.2.1".into()),
            description: Some("<img src=x onerror=alert(1)>".into()),
        }));
        for page in [
            login("c\"sr<f", "id\"", &r, Some("<i>no</i>")).into_string(),
            consent("alice<", "c\"sr<f", "id\"", &r).into_string(),
        ] {
            assert!(!page.contains("<script>x"), "{page}");
            assert!(!page.contains("<img"), "{page}");
            assert!(!page.contains("<b>app"), "{page}");
            assert!(
                page.contains("&lt;script&gt;x&lt;/script&gt;") || page.contains("&lt;b&gt;app")
            );
            assert!(page.contains("value=\"c&quot;sr&lt;f\""), "{page}");
            assert!(page.contains("(SHA-256)"));
        }
    }

    #[test]
    fn the_consent_page_shows_the_hashes_and_the_answers() {
        let hashes: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 32]).collect();
        let r = request(Scope::Credential(CredentialGrant {
            credential_id: "alice-p256-oauth2".into(),
            num_signatures: 12,
            hashes,
            hash_algo: None,
            description: Some("Sign 12 documents".into()),
        }));
        let page = consent("alice", "t", "req", &r).into_string();
        assert!(page.contains("alice-p256-oauth2"));
        assert!(page.contains(&format!("title=\"{}\"", "09".repeat(32))));
        assert!(page.contains("and 2 more"));
        assert!(page.contains("value=\"allow\"") && page.contains("value=\"deny\""));
        let service = consent("alice", "t", "req", &request(Scope::Service)).into_string();
        assert!(service.contains("Sign in to your signing account"));
    }
}
