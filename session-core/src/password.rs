//! Password hashing for the accounts behind a login (feature `password`): Argon2id with a random
//! salt per password, verified in constant time, and run on tokio's blocking threads so that a
//! burst of logins cannot stall the executor's workers.
//!
//! ```
//! use session_core::password::Passwords;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let passwords = Passwords::default();
//! let hash = passwords.hash("correct horse battery staple").await?;
//! assert!(hash.starts_with("$argon2id$"));
//! assert!(passwords.verify("correct horse battery staple", Some(&hash)).await?);
//! assert!(!passwords.verify("wrong", Some(&hash)).await?);
//! // An unknown user: compare against a dummy hash, so the answer takes as long as a real one.
//! assert!(!passwords.verify("anything", None).await?);
//! # Ok::<(), session_core::Error>(())
//! # }).unwrap();
//! ```

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Argon2id hashing with fixed cost parameters.
///
/// The default costs are OWASP's recommendation for Argon2id (19 MiB of memory, 2 passes,
/// 1 lane): tens of milliseconds per hash on a server core.
///
/// At most half the machine's cores (at least one) hash at once; further logins wait their turn
/// asynchronously, so a burst of logins cannot take every core from the requests being served.
#[derive(Debug, Clone)]
pub struct Passwords {
    params: Params,
    dummy: Arc<OnceLock<String>>,
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::from_params(Params::default())
    }
}

impl Passwords {
    /// Argon2id with custom costs: `memory_kib` of memory, `iterations` passes, `lanes`
    /// parallelism.
    ///
    /// **Security:** lower costs make stolen hashes cheaper to crack; keep the defaults unless
    /// you have measured a reason.
    ///
    /// # Errors
    /// [`Error::Config`] when the costs are out of Argon2's range.
    pub fn with_costs(memory_kib: u32, iterations: u32, lanes: u32) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, lanes, None)
            .map_err(|e| Error::Config(format!("Argon2 costs: {e}")))?;
        Ok(Self::from_params(params))
    }

    fn from_params(params: Params) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            params,
            dummy: Arc::new(OnceLock::new()),
            permits: Arc::new(Semaphore::new((cores / 2).max(1))),
        }
    }

    /// Runs `work` on the blocking pool once a hashing permit is free.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Internal(format!("password hashing permits: {e}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("password hashing task: {e}")))
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    fn hash_blocking(params: Params, password: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        Self::argon2(params)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    }

    /// Hashes `password` with a new random salt; the result is a PHC string
    /// (`$argon2id$v=19$m=...`) that carries the salt and the costs.
    ///
    /// # Errors
    /// [`Error::Internal`] if hashing fails (it does not for sane inputs).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.blocking(move || Self::hash_blocking(params, &password))
            .await?
    }

    /// Checks `password` against `hash` in constant time. With `hash` `None` (no such user) it
    /// checks against a dummy hash of the same costs and answers `false`, so an unknown user
    /// and a wrong password take about the same time. A stored hash that cannot be parsed
    /// also answers `false` (and is logged).
    ///
    /// # Errors
    /// [`Error::Internal`] if the blocking task cannot run.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let params = self.params.clone();
        let (hash, known) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash(params.clone()).await?, false),
        };
        let password = password.to_owned();
        self.blocking(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "stored password hash cannot be parsed");
                    return false;
                }
            };
            // `verify_password` compares in constant time.
            let ok = Self::argon2(params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            ok && known
        })
        .await
    }

    async fn dummy_hash(&self, params: Params) -> Result<String> {
        if let Some(h) = self.dummy.get() {
            return Ok(h.clone());
        }
        let dummy = Arc::clone(&self.dummy);
        self.blocking(move || {
            let h = Self::hash_blocking(params, "session-core dummy password")?;
            Ok(dummy.get_or_init(|| h).clone())
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_hash_has_its_own_salt() {
        let p = Passwords::with_costs(1024, 1, 1).unwrap();
        let a = p.hash("same").await.unwrap();
        let b = p.hash("same").await.unwrap();
        assert_ne!(a, b);
        assert!(p.verify("same", Some(&a)).await.unwrap());
        assert!(p.verify("same", Some(&b)).await.unwrap());
        assert!(!p.verify("other", Some(&a)).await.unwrap());
        assert!(!p.verify("same", Some("not a phc string")).await.unwrap());
        assert!(!p.verify("session-core dummy password", None).await.unwrap());
    }
}
