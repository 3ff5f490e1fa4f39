//! A PKCS#11 library in this process. PKCS#11 allows one `C_Initialize` per library and process, so
//! modules are loaded once per path and kept for the life of the process (a library is never
//! unloaded while sessions of it may exist). Also finds tokens by label and initializes new ones.

use crate::{Error, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub struct Module {
    path: PathBuf,
    pub(crate) pkcs11: Pkcs11,
    /// Held while a free slot is picked and initialized, so that two threads do not pick the same.
    token_init: Mutex<()>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

fn loaded() -> &'static Mutex<HashMap<PathBuf, Arc<Module>>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// Whether any module has been loaded in this process (SoftHSM reads its configuration then).
pub(crate) fn any_loaded() -> bool {
    !loaded()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
}

impl Module {
    /// The module at `path`, loaded and initialized (OS locking: sessions are used from many
    /// threads) on first use.
    pub fn load(path: &Path) -> Result<Arc<Module>> {
        let shown = || path.display().to_string();
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::Load {
            path: shown(),
            message: e.to_string(),
        })?;
        let mut map = loaded().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(&canonical) {
            return Ok(m.clone());
        }
        let pkcs11 = Pkcs11::new(&canonical).map_err(|e| Error::Load {
            path: shown(),
            message: e.to_string(),
        })?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Another part of the process initialized it; its sessions and ours coexist.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(Error::Load {
                    path: shown(),
                    message: format!("C_Initialize: {e}"),
                })
            }
        }
        let module = Arc::new(Module {
            path: canonical.clone(),
            pkcs11,
            token_init: Mutex::new(()),
        });
        map.insert(canonical, module.clone());
        Ok(module)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cryptoki context, for inspecting tokens and objects (tests, diagnostics).
    pub fn context(&self) -> &Pkcs11 {
        &self.pkcs11
    }

    /// The slot of the initialized token labelled `label`.
    pub fn token_slot(&self, label: &str) -> Result<Slot> {
        let slots = self
            .pkcs11
            .get_slots_with_initialized_token()
            .map_err(Error::pkcs11("C_GetSlotList"))?;
        for slot in slots {
            let info = self
                .pkcs11
                .get_token_info(slot)
                .map_err(Error::pkcs11("C_GetTokenInfo"))?;
            if info.label().trim_end() == label {
                return Ok(slot);
            }
        }
        Err(Error::NoToken(label.to_owned()))
    }

    /// Initializes a new token labelled `label` in a free slot (SoftHSM always offers one) with
    /// `so_pin` and sets its user PIN to `user_pin`.
    pub fn init_token(&self, label: &str, so_pin: &str, user_pin: &str) -> Result<()> {
        if label.is_empty() || label.len() > 32 {
            return Err(Error::Input("a token label has 1 to 32 bytes"));
        }
        let _guard = self.token_init.lock().unwrap_or_else(|p| p.into_inner());
        match self.token_slot(label) {
            Ok(_) => return Err(Error::TokenExists(label.to_owned())),
            Err(Error::NoToken(_)) => {}
            Err(e) => return Err(e),
        }
        let slots = self
            .pkcs11
            .get_slots_with_token()
            .map_err(Error::pkcs11("C_GetSlotList"))?;
        let mut free = None;
        for slot in slots {
            let info = self
                .pkcs11
                .get_token_info(slot)
                .map_err(Error::pkcs11("C_GetTokenInfo"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or(Error::NoFreeSlot)?;
        let so = AuthPin::from(so_pin.to_owned());
        self.pkcs11
            .init_token(slot, &so, label)
            .map_err(Error::pkcs11("C_InitToken"))?;
        // SoftHSM renumbers the slot of a token it initializes.
        let slot = self.token_slot(label)?;
        let session = self
            .pkcs11
            .open_rw_session(slot)
            .map_err(Error::pkcs11("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so))
            .map_err(Error::pkcs11("C_Login (SO)"))?;
        session
            .init_pin(&AuthPin::from(user_pin.to_owned()))
            .map_err(Error::pkcs11("C_InitPIN"))?;
        session.logout().map_err(Error::pkcs11("C_Logout"))?;
        Ok(())
    }
}
