//! The reference service's OAuth 2.0 pages as a person uses them, in headless Chromium: open the
//! authorization address an application shows, sign in (password and account code), allow or deny,
//! and let the browser follow the redirect back to the application's loopback listener (RFC 8252
//! §7.3). Only the browser talks to the pages: their cookies, CSRF fields, content security policy
//! (`form-action` must admit the loopback redirect) and the redirect are exercised as a user meets them.

use crate::browser::{fill, launch_chromium};
use crate::service::Service;
use crate::totp::account_code;
use std::time::{Duration, Instant};

/// What the browser did: where the service sent it back to, and what the loopback listener showed.
pub struct Redirected {
    /// The redirect with `code` (or `error`) and `state`.
    pub location: String,
    /// The text of the page the loopback listener answered with.
    pub loopback_page: String,
}

impl Redirected {
    /// The authorization code in the redirect, if any.
    pub fn code(&self) -> Option<String> {
        let query = self.location.split_once('?')?.1;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("code="))
            .map(str::to_owned)
    }
}

/// How long one page may take on a busy 2-core machine.
const STEP: Duration = Duration::from_secs(30);

/// Opens `url` (an `oauth2/authorize` address at `svc`) in a fresh headless Chromium, signs in as
/// `user`, presses Allow or Deny, and waits until the browser shows the loopback listener's page.
pub fn authorize_in_browser(svc: &Service, url: &str, user: &str, allow: bool) -> Redirected {
    assert!(
        url.starts_with(&format!("{}/oauth2/authorize?", svc.url)),
        "{url} is not the service's authorization endpoint ({})",
        svc.url
    );
    let profile = tempfile::tempdir().expect("browser profile folder");
    let browser = launch_chromium(&svc.ca_file(), profile.path());
    let tab = browser.new_tab().expect("tab");
    tab.set_default_timeout(STEP);
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    let text = |tab: &headless_chrome::Tab| {
        tab.wait_for_element("body")
            .and_then(|b| b.get_inner_text())
            .unwrap_or_else(|e| format!("(no page text: {e})"))
    };

    let demo = svc.demo.token_of(user);
    fill(&tab, "#username", user);
    fill(&tab, "#password", &demo.password);
    fill(&tab, "#code", &account_code(demo));
    tab.wait_for_element("button[type=submit]")
        .and_then(|b| b.click().map(|_| ()))
        .unwrap_or_else(|e| panic!("sign-in button: {e}\n{}", text(&tab)));

    let button = if allow { "#allow" } else { "#deny" };
    let consent = tab
        .wait_for_element(button)
        .unwrap_or_else(|e| panic!("no {button} on the consent page: {e}\n{}", text(&tab)));
    let consent_text = text(&tab);
    assert!(
        consent_text.contains(user),
        "the consent page names the user: {consent_text}"
    );
    consent
        .click()
        .unwrap_or_else(|e| panic!("press {button}: {e}"));

    let deadline = Instant::now() + STEP;
    let location = loop {
        let at = tab.get_url();
        if at.starts_with("http://127.0.0.1:") {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the browser did not come back to the loopback listener; it is at {at}:\n{}",
            text(&tab)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let deadline = Instant::now() + STEP;
    let loopback_page = loop {
        let shown = text(&tab);
        if shown.contains("cloudtoken") || Instant::now() >= deadline {
            break shown;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Redirected {
        location,
        loopback_page,
    }
}
