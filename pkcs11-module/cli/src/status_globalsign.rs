//! `cloudtoken status` for a GlobalSign DSS token: the API reachable over the account's client
//! certificate, the API key and secret accepted, what is left of the account's quota, and the names
//! applications find the token's key and certificate by (their CKA_ID changes with every identity, so
//! the URIs name the token and the label).

use crate::words::{self, Failure, Outcome};
use cloudtoken::config::{self, TokenConfig};
use cloudtoken::naming::{self, ObjectType};
use remote_client::globalsign::{Count, GlobalsignClient};

pub fn token_status(t: &TokenConfig, tls: String) -> Outcome<()> {
    let cc = cloudtoken::service::transport_config(t).map_err(|e| {
        Failure(format!(
            "The service address cannot be read: {e}. Check url / url_file in the configuration."
        ))
    })?;
    let url = cc.base_url.clone();
    let ca = t.ca_file.as_deref();
    let client = GlobalsignClient::new(&cc).map_err(|e| words::service(&url, ca, &e))?;
    let secret_file = t
        .api_secret_file
        .as_ref()
        .ok_or_else(|| Failure::new("The token has no api_secret_file."))?;
    let secret = config::files::read_secret_file(secret_file)
        .map_err(|e| Failure(format!("The API secret cannot be used: {e}.")))?;
    let token = client
        .login(t.api_key.as_deref().unwrap_or(""), &secret)
        .map_err(|e| words::service(&url, ca, &e))?;
    println!("  service      {url}: GlobalSign DSS API, reachable");
    println!("  TLS          {tls}");
    println!(
        "  account      API key {}: signed in with the secret in {}",
        t.api_key.as_deref().unwrap_or(""),
        secret_file.display()
    );
    let quota = client
        .quota(&token, Count::Signatures)
        .map_err(|e| words::service(&url, ca, &e))?;
    let made = client
        .counter(&token, Count::Signatures)
        .map_err(|e| words::service(&url, ca, &e))?;
    println!("  quota        {quota} signatures left ({made} made)");
    let label = t
        .subject_dn
        .as_ref()
        .and_then(|s| s.common_name.clone())
        .unwrap_or_else(|| t.label.clone());
    println!(
        "  identity     \"{label}\": a new key and certificate about every ten minutes, renewed {} s \
         before the certificate ends",
        t.identity_renew_before_s
    );
    for kind in [ObjectType::PrivateKey, ObjectType::Certificate] {
        println!(
            "               {}",
            naming::label_uri(&t.label, &label, kind)
        );
    }
    if quota == 0 {
        return Err(Failure::new(
            "The account's signature quota is used up: ask GlobalSign for more.",
        ));
    }
    Ok(())
}
