//! The baseline of the module's overhead: remote-client's `signatures/signHash` called in process,
//! against the same csc-server and credential as the cloudtoken path, with a SAD of the same kind
//! (one `credentials/authorize` with the PIN for the whole run, before any timing).
//!
//! Also what the benchmark reads from the reference service's state folder: its URL, CA, and the
//! e-seal account in demo.json.

use crate::alg::{Alg, Message};
use crate::verify::PublicKey;
use crate::Result;
use remote_client::{
    oid, Access, ApiVersion, Authorization, AuthorizeRequest, ClientConfig, CscClient, Secret,
    ServiceAuth, SignHashRequest,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What demo.json says about the e-seal account and one of its credentials.
pub struct Account {
    pub user: String,
    pub password: Secret,
    pub pin: Secret,
    pub state: PathBuf,
}

impl Account {
    /// The account `user` of the service whose state folder is `state`.
    pub fn read(state: &Path, user: &str) -> Result<Account> {
        let path = state.join("demo.json");
        let demo: Value = serde_json::from_slice(
            &std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let token = demo["tokens"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["user"] == user))
            .ok_or_else(|| format!("{}: no account {user:?}", path.display()))?;
        let field = |name: &str| {
            token[name]
                .as_str()
                .map(Secret::new)
                .ok_or_else(|| format!("{}: {user} has no {name}", path.display()))
        };
        Ok(Account {
            user: user.to_owned(),
            password: field("password")?,
            pin: field("pin")?,
            state: state.to_path_buf(),
        })
    }

    /// The service's URL (`STATE/server.url`, written by `csc-server serve`).
    fn url(&self) -> Result<String> {
        let path = self.state.join("server.url");
        let url = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(url.trim().to_owned())
    }
}

/// A signed-in client holding one SAD for `credential`.
pub struct Direct {
    client: CscClient,
    access: Access,
    credential: String,
    sad: Secret,
    alg: Alg,
    /// From the credential's certificate.
    pub public: PublicKey,
}

impl Direct {
    /// Signs in as the account, reads the credential's certificate and authorizes `signatures`
    /// signatures with the PIN.
    pub fn open(account: &Account, credential: &str, alg: Alg, signatures: u32) -> Result<Direct> {
        let fail = |what: &str, e: remote_client::Error| format!("remote-client {what}: {e}");
        let mut config = ClientConfig::new(account.url()?);
        config.api_version = ApiVersion::V2;
        config.ca_file = Some(account.state.join("ca.pem"));
        let client = CscClient::new(&config).map_err(|e| fail("setup", e))?;
        let access = client
            .sign_in(&ServiceAuth::Password {
                account: account.user.clone(),
                password: account.password.clone(),
            })
            .map_err(|e| fail("auth/login", e))?
            .access;
        let info = client
            .credential_info(&access, credential)
            .map_err(|e| fail("credentials/info", e))?;
        let cert = info
            .certificates
            .first()
            .ok_or_else(|| format!("credentials/info of {credential}: no certificate"))?;
        let public = PublicKey::from_certificate(cert)?;
        public.check_size(alg)?;
        let request = AuthorizeRequest {
            credential_id: credential.to_owned(),
            num_signatures: signatures,
            pin: Some(account.pin.clone()),
            ..Default::default()
        };
        let sad = match client
            .authorize(&access, &request)
            .map_err(|e| fail("credentials/authorize", e))?
        {
            Authorization::Granted(sad) => sad.value,
            Authorization::Pending { .. } => {
                return Err(format!(
                    "credentials/authorize of {credential} waits for an approval: not an e-seal"
                ))
            }
        };
        Ok(Direct {
            client,
            access,
            credential: credential.to_owned(),
            sad,
            alg,
            public,
        })
    }

    /// One signHash of the message's hash: the signature (DER for ECDSA).
    pub fn sign(&self, m: &Message) -> Result<Vec<u8>> {
        let request = SignHashRequest {
            credential_id: self.credential.clone(),
            sad: self.sad.clone(),
            hashes: vec![m.hash.clone()],
            hash_algorithm_oid: oid::SHA256.to_owned(),
            sign_algorithm_oid: self.alg.csc_sign_algo().to_owned(),
            sign_algorithm_params: None,
        };
        let mut sigs = self
            .client
            .sign_hash(&self.access, &request)
            .map_err(|e| format!("remote-client signatures/signHash: {e}"))?;
        sigs.pop()
            .ok_or_else(|| "signatures/signHash returned no signature".to_owned())
    }
}
