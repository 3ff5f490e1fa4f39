//! The demo population `init` creates: users and their credentials. Credential IDs are stable names so that
//! tests, demos and configurations can refer to them; keys, certificates and secrets are fresh per state.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    P256,
    P384,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
            KeyKind::P256 => "ec-p256",
            KeyKind::P384 => "ec-p384",
        }
    }

    pub fn parse(name: &str) -> Option<KeyKind> {
        [
            KeyKind::Rsa2048,
            KeyKind::Rsa3072,
            KeyKind::P256,
            KeyKind::P384,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    pub fn bits(self) -> u32 {
        match self {
            KeyKind::Rsa2048 => 2048,
            KeyKind::Rsa3072 => 3072,
            KeyKind::P256 => 256,
            KeyKind::P384 => 384,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyKind::Rsa2048 | KeyKind::Rsa3072)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the second factor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpKind {
    /// RFC 6238 codes from the user's authenticator app (CSC "offline").
    Totp,
    /// Codes the service sends on request (CSC "online"); here written to the SMS outbox file.
    Sms,
    /// No code: `credentials/authorize` (v2) queues the request, and the user approves or declines it
    /// on the approval page (`GET /approve`), out of band like a push to a phone.
    Approval,
    /// No second factor: the PIN alone authorizes, as providers offer organisations' e-seals.
    PinOnly,
    /// CSC `authMode` `oauth2code`: no `credentials/authorize`; the user signs in on the service's
    /// OAuth 2.0 page (password and account code) and consents to the signatures (`scope=credential`),
    /// and the credential token the client gets for the code is the SAD.
    OAuth2,
}

impl OtpKind {
    pub fn name(self) -> &'static str {
        match self {
            OtpKind::Totp => "totp",
            OtpKind::Sms => "sms",
            OtpKind::Approval => "approval",
            OtpKind::PinOnly => "none",
            OtpKind::OAuth2 => "oauth2",
        }
    }

    pub fn parse(name: &str) -> Option<OtpKind> {
        match name {
            "totp" => Some(OtpKind::Totp),
            "sms" => Some(OtpKind::Sms),
            "approval" => Some(OtpKind::Approval),
            "none" => Some(OtpKind::PinOnly),
            "oauth2" => Some(OtpKind::OAuth2),
            _ => None,
        }
    }
}

/// What a credential's certificate says its key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Documents and seals: key usage digitalSignature + nonRepudiation.
    Signing,
    /// TLS client login: key usage digitalSignature, extended key usage clientAuth.
    Authentication,
}

impl Usage {
    pub fn name(self) -> &'static str {
        match self {
            Usage::Signing => "signing",
            Usage::Authentication => "authentication",
        }
    }
}

pub struct UserSpec {
    pub name: &'static str,
    /// Person's name: certificate CN and token label.
    pub display_name: &'static str,
    /// `batch_size` of the user's token in the module configuration `init` writes.
    pub batch_size: u32,
}

pub struct CredentialSpec {
    pub id: &'static str,
    pub user: &'static str,
    pub key: KeyKind,
    pub otp: OtpKind,
    pub scal: u8,
    pub multisign: u32,
    /// `credentials/info` description; the module uses it as CKA_LABEL.
    pub label: &'static str,
    pub usage: Usage,
    /// Seconds a SAD of this credential stays valid, unless `serve` says otherwise; `None`: the
    /// service's `--sad-lifetime`.
    pub sad_lifetime: Option<i64>,
}

pub const USERS: &[UserSpec] = &[
    UserSpec {
        name: "alice",
        display_name: "Alice Example",
        batch_size: 30,
    },
    UserSpec {
        name: "bob",
        display_name: "Bob Example",
        batch_size: 30,
    },
    // Exists for destructive tests (lockouts) so that alice and bob stay usable.
    UserSpec {
        name: "carol",
        display_name: "Carol Example",
        batch_size: 30,
    },
    // An organisation whose e-seals sign unattended (batch signing, e-invoices).
    UserSpec {
        name: "seal",
        display_name: "Example Organisation Seal",
        batch_size: 1000,
    },
    // A person whose signatures are authorized at the service's OAuth 2.0 page (an EU-wallet-style
    // QTSP): no PIN or code the signing application could collect.
    UserSpec {
        name: "dave",
        display_name: "Dave Example",
        batch_size: 30,
    },
];

const fn cred(
    id: &'static str,
    user: &'static str,
    key: KeyKind,
    otp: OtpKind,
    scal: u8,
    multisign: u32,
    label: &'static str,
) -> CredentialSpec {
    CredentialSpec {
        id,
        user,
        key,
        otp,
        scal,
        multisign,
        label,
        usage: Usage::Signing,
        sad_lifetime: None,
    }
}

/// A key for logging in to web sites (TLS client authentication): one signature per handshake, so
/// SCAL 1 and batches, never SCAL 2.
const fn login(id: &'static str, key: KeyKind, label: &'static str) -> CredentialSpec {
    CredentialSpec {
        usage: Usage::Authentication,
        ..cred(id, "alice", key, OtpKind::Totp, 1, 100, label)
    }
}

/// An organisation's e-seal: PIN only, SCAL 1, large batches, SADs that last an hour.
const fn seal(id: &'static str, key: KeyKind, label: &'static str) -> CredentialSpec {
    CredentialSpec {
        sad_lifetime: Some(3600),
        ..cred(id, "seal", key, OtpKind::PinOnly, 1, 10_000, label)
    }
}

/// In `credentials/list` order.
pub const CREDENTIALS: &[CredentialSpec] = &[
    cred(
        "alice-rsa2048",
        "alice",
        KeyKind::Rsa2048,
        OtpKind::Totp,
        1,
        100,
        "Alice Example (RSA-2048)",
    ),
    cred(
        "alice-p256",
        "alice",
        KeyKind::P256,
        OtpKind::Totp,
        1,
        100,
        "Alice Example (P-256)",
    ),
    cred(
        "alice-rsa3072",
        "alice",
        KeyKind::Rsa3072,
        OtpKind::Sms,
        1,
        100,
        "Alice Example (RSA-3072)",
    ),
    cred(
        "alice-p384",
        "alice",
        KeyKind::P384,
        OtpKind::Sms,
        1,
        100,
        "Alice Example (P-384)",
    ),
    // Approved out of band on the approval page: one SCAL 2 key for single signatures, one SCAL 1 key
    // for batches.
    cred(
        "alice-p256-approve",
        "alice",
        KeyKind::P256,
        OtpKind::Approval,
        2,
        10,
        "Alice Example (P-256, approval)",
    ),
    cred(
        "alice-rsa2048-approve",
        "alice",
        KeyKind::Rsa2048,
        OtpKind::Approval,
        1,
        100,
        "Alice Example (RSA-2048, approval)",
    ),
    // TLS client login (certificates with the clientAuth extended key usage).
    login(
        "alice-auth-p256",
        KeyKind::P256,
        "Alice Example (P-256, TLS login)",
    ),
    login(
        "alice-auth-rsa2048",
        KeyKind::Rsa2048,
        "Alice Example (RSA-2048, TLS login)",
    ),
    cred(
        "bob-rsa2048-scal2",
        "bob",
        KeyKind::Rsa2048,
        OtpKind::Sms,
        2,
        10,
        "Bob Example (RSA-2048, SCAL2)",
    ),
    cred(
        "bob-p256-scal2",
        "bob",
        KeyKind::P256,
        OtpKind::Totp,
        2,
        10,
        "Bob Example (P-256, SCAL2)",
    ),
    cred(
        "bob-p256-single",
        "bob",
        KeyKind::P256,
        OtpKind::Totp,
        1,
        1,
        "Bob Example (P-256, single)",
    ),
    // Authorized on the service's OAuth 2.0 page (scope=credential), for the hashes it shows.
    cred(
        "dave-p256-oauth2",
        "dave",
        KeyKind::P256,
        OtpKind::OAuth2,
        2,
        10,
        "Dave Example (P-256, OAuth 2.0)",
    ),
    cred(
        "carol-p256",
        "carol",
        KeyKind::P256,
        OtpKind::Totp,
        1,
        10,
        "Carol Example (P-256)",
    ),
    cred(
        "carol-p256-sms",
        "carol",
        KeyKind::P256,
        OtpKind::Sms,
        1,
        10,
        "Carol Example (P-256, SMS)",
    ),
    seal(
        "seal-rsa2048",
        KeyKind::Rsa2048,
        "Example Organisation Seal (RSA-2048)",
    ),
    seal(
        "seal-p256",
        KeyKind::P256,
        "Example Organisation Seal (P-256)",
    ),
];

/// Organisation and country of every demo certificate subject.
pub const ORGANIZATION: &str = "cloudtoken demo";
pub const COUNTRY: &str = "DE";
/// Length of PINs and OTPs (digits).
pub const PIN_LENGTH: usize = 6;
pub const OTP_LENGTH: usize = 6;
