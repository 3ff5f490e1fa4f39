//! A PKCS#11 token as an application reaches it: the module loaded with cryptoki (dlopen, then
//! C_GetInterface or C_GetFunctionList), C_Initialize with OS locking, the slot found by token label,
//! sessions, the user's login when the token wants one, the key pair found by label, and C_SignInit +
//! C_Sign (length query, then the signature) per signature. Knows nothing of what is measured.

use crate::alg::{Alg, Message};
use crate::verify::PublicKey;
use crate::Result;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::Path;

/// One loaded module with the slot of one token.
pub struct Token {
    /// What the report calls this path.
    pub name: &'static str,
    ctx: Pkcs11,
    slot: Slot,
    pin: Option<AuthPin>,
}

/// A private key and the public key that checks its signatures.
pub struct KeyPair {
    pub private: ObjectHandle,
    pub public: PublicKey,
}

impl Token {
    /// Loads `module`, initializes it and finds the token labelled `label`. `pin`: the user PIN to log
    /// in with (`None`: the token needs no login).
    pub fn open(
        name: &'static str,
        module: &Path,
        label: &str,
        pin: Option<String>,
    ) -> Result<Token> {
        let fail = |what: &str, e: cryptoki::error::Error| {
            format!("{name}: {what} ({}): {e}", module.display())
        };
        let ctx = Pkcs11::new(module).map_err(|e| fail("loading the module", e))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| fail("C_Initialize", e))?;
        let slot = find_slot(&ctx, name, label)?;
        Ok(Token {
            name,
            ctx,
            slot,
            pin: pin.map(AuthPin::from),
        })
    }

    /// Another token of the same module (no login), labelled `label`.
    pub fn sibling(&self, label: &str) -> Result<Token> {
        Ok(Token {
            name: self.name,
            ctx: self.ctx.clone(),
            slot: find_slot(&self.ctx, self.name, label)?,
            pin: None,
        })
    }

    /// A new read-only session; the first one logs the application in (PKCS#11 logs in per token and
    /// application, so later sessions share it).
    pub fn session(&self) -> Result<Session> {
        let s = self
            .ctx
            .open_ro_session(self.slot)
            .map_err(|e| format!("{}: C_OpenSession: {e}", self.name))?;
        if let Some(pin) = &self.pin {
            match s.login(UserType::User, Some(pin)) {
                Ok(())
                | Err(cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::UserAlreadyLoggedIn,
                    _,
                )) => {}
                Err(e) => return Err(format!("{}: C_Login: {e}", self.name)),
            }
        }
        Ok(s)
    }

    /// The private key labelled `label` and its public key (same CKA_ID), which must be of `alg`'s type.
    pub fn key(&self, s: &Session, label: &str, alg: Alg) -> Result<KeyPair> {
        let fail = |what: &str, e: cryptoki::error::Error| format!("{}: {what}: {e}", self.name);
        let one = |class: ObjectClass, by: Attribute| -> Result<ObjectHandle> {
            let found = s
                .find_objects(&[Attribute::Class(class), by])
                .map_err(|e| fail("C_FindObjects", e))?;
            match found[..] {
                [h] => Ok(h),
                _ => Err(format!(
                    "{}: {} objects of class {class} for key {label:?}, expected one",
                    self.name,
                    found.len()
                )),
            }
        };
        let private = one(
            ObjectClass::PRIVATE_KEY,
            Attribute::Label(label.as_bytes().to_vec()),
        )?;
        let id = match &s
            .get_attributes(private, &[AttributeType::Id])
            .map_err(|e| fail("CKA_ID", e))?[..]
        {
            [Attribute::Id(id)] => id.clone(),
            _ => return Err(format!("{}: key {label:?} has no CKA_ID", self.name)),
        };
        let public = one(ObjectClass::PUBLIC_KEY, Attribute::Id(id))?;
        let attrs = s
            .get_attributes(
                public,
                &[
                    AttributeType::EcPoint,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                ],
            )
            .map_err(|e| fail("public key attributes", e))?;
        let (mut point, mut n, mut e) = (None, None, None);
        for a in attrs {
            match a {
                Attribute::EcPoint(v) => point = Some(v),
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        let public = match (alg, point, n, e) {
            (Alg::EcdsaP256, Some(point), _, _) => PublicKey::from_ec_point(&point)?,
            (Alg::Rsa2048, _, Some(n), Some(e)) => PublicKey::rsa(n, e),
            _ => {
                return Err(format!(
                    "{}: key {label:?} is not an {} key",
                    self.name,
                    alg.title()
                ))
            }
        };
        public
            .check_size(alg)
            .map_err(|e| format!("{}: {e}", self.name))?;
        Ok(KeyPair { private, public })
    }

    /// C_Finalize. The library stays loaded, as applications keep it: a module's threads may outlive
    /// C_Finalize by a moment, and unloading their code under them would crash the benchmark.
    pub fn finish(self) -> Result<()> {
        std::mem::forget(self.ctx.clone());
        self.ctx
            .finalize()
            .map_err(|e| format!("{}: C_Finalize: {e}", self.name))
    }
}

/// The slot of the token labelled `label`.
fn find_slot(ctx: &Pkcs11, name: &str, label: &str) -> Result<Slot> {
    let fail = |what: &str, e: cryptoki::error::Error| format!("{name}: {what}: {e}");
    for slot in ctx
        .get_slots_with_token()
        .map_err(|e| fail("C_GetSlotList", e))?
    {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| fail("C_GetTokenInfo", e))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(format!("{name}: no token labelled {label:?}"))
}

/// One signature of `message` with `key`, as applications make it: C_SignInit, C_Sign for the length,
/// C_Sign for the signature.
pub fn sign(s: &Session, key: &KeyPair, alg: Alg, message: &Message) -> Result<Vec<u8>> {
    s.sign(&alg.mechanism(), key.private, alg.pkcs11_input(message))
        .map_err(|e| format!("C_Sign ({}): {e}", alg.title()))
}
