//! The demo data every state folder starts with (users and their certificates) and the names the DSS
//! services are reached by.

/// The identity service's and the signature service's application names (`https://host/STS/...`,
/// `https://host/SignServer/rest/api/...`), as a default DSS installation names them.
pub const STS: &str = "STS";
pub const SIGNSERVER: &str = "SignServer";
/// The signature service's identifier at the identity service (DSS: `urn:cryptopro:dss:signserver:<name>`).
pub const RESOURCE: &str = "urn:cryptopro:dss:signserver:signserver";
/// The OAuth client `init` registers for cloudtoken (a public client, as DSS's built-in ones are).
pub const CLIENT_ID: &str = "cloudtoken";
pub const ORGANIZATION: &str = "cloudtoken demo";
pub const PROGRAM: &str = "cryptopro-dss-emulator";
/// The label of the SoftHSM token holding the RSA keys.
pub const HSM_TOKEN: &str = "cryptopro-dss-emulator";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Gost256,
    Gost512,
    Rsa2048,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Gost256 => "gost2012-256",
            KeyKind::Gost512 => "gost2012-512",
            KeyKind::Rsa2048 => "rsa-2048",
        }
    }

    pub fn parse(name: &str) -> Option<KeyKind> {
        [KeyKind::Gost256, KeyKind::Gost512, KeyKind::Rsa2048]
            .into_iter()
            .find(|k| k.name() == name)
    }

    /// The Streebog length the raw signature of a hash takes (`None`: not a GOST key).
    pub fn hash_len(self) -> Option<usize> {
        match self {
            KeyKind::Gost256 => Some(32),
            KeyKind::Gost512 => Some(64),
            KeyKind::Rsa2048 => None,
        }
    }

    /// What DSS calls the key's cryptographic provider (`ProviderName`), as CryptoPro CSP names them.
    pub fn provider(self) -> &'static str {
        match self {
            KeyKind::Gost256 => "Crypto-Pro GOST R 34.10-2012 Cryptographic Service Provider",
            KeyKind::Gost512 => {
                "Crypto-Pro GOST R 34.10-2012 Strong Cryptographic Service Provider"
            }
            KeyKind::Rsa2048 => "Microsoft Enhanced RSA and AES Cryptographic Provider",
        }
    }
}

pub struct UserSpec {
    pub name: &'static str,
    pub display_name: &'static str,
}

pub struct CertSpec {
    /// `ID` at the signature service.
    pub id: u32,
    pub user: &'static str,
    pub friendly_name: &'static str,
    pub kind: KeyKind,
}

pub const USERS: &[UserSpec] = &[
    UserSpec {
        name: "alice",
        display_name: "Alice Example",
    },
    UserSpec {
        name: "bob",
        display_name: "Bob Example",
    },
];

pub const CERTS: &[CertSpec] = &[
    CertSpec {
        id: 1,
        user: "alice",
        friendly_name: "Alice Example GOST 256",
        kind: KeyKind::Gost256,
    },
    CertSpec {
        id: 2,
        user: "alice",
        friendly_name: "Alice Example GOST 512",
        kind: KeyKind::Gost512,
    },
    CertSpec {
        id: 3,
        user: "alice",
        friendly_name: "Alice Example RSA",
        kind: KeyKind::Rsa2048,
    },
    CertSpec {
        id: 4,
        user: "bob",
        friendly_name: "Bob Example GOST 256",
        kind: KeyKind::Gost256,
    },
];
