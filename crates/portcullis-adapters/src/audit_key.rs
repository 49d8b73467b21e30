//! The audit chain's key for the domain: HMAC-SHA256 under the key derived
//! from the master key.

use portcullis_crypto::{AuditMacKey, CryptoError, MasterKey};
use portcullis_domain::audit::{AuditKey, AuditMac};

/// The domain's [`AuditKey`], derived from the deployment's master key, so
/// that every node (and `portcullis audit verify`) holding the master key
/// holds the same chain key.
#[derive(Debug, Clone)]
pub struct MasterAuditKey {
    key: AuditMacKey,
}

impl MasterAuditKey {
    /// Derives the chain key from `master_key`.
    ///
    /// # Errors
    ///
    /// When the derivation fails (see [`MasterKey::audit_mac_key`]).
    pub fn derive(master_key: &MasterKey) -> Result<Self, CryptoError> {
        Ok(Self {
            key: master_key.audit_mac_key()?,
        })
    }
}

impl AuditKey for MasterAuditKey {
    fn mac(&self, message: &[u8]) -> AuditMac {
        AuditMac(self.key.mac(message))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use portcullis_domain::audit::{
        AuditAnchor, AuditContext, AuditEvent, ChainProblem, ChainVerifier, chain_next,
    };
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_chain_made_with_one_master_key_verifies_only_with_it() {
        let key = MasterAuditKey::derive(&MasterKey::generate()).unwrap();
        let record = AuditContext::system(datetime!(2026-12-04 12:00 UTC))
            .record(None, AuditEvent::PasswordChanged);
        let (first, head) = chain_next(&key, None, &record).unwrap();
        let (second, head) = chain_next(&key, Some(&head), &record).unwrap();
        let anchor = AuditAnchor {
            head: Some(head),
            checkpoint: None,
        };
        let mut verifier = ChainVerifier::start(&key, anchor).unwrap();
        verifier.check(&first).unwrap();
        verifier.check(&second).unwrap();
        assert_eq!(verifier.finish().unwrap().events, 2);

        let other = MasterAuditKey::derive(&MasterKey::generate()).unwrap();
        let refused = ChainVerifier::start(&other, anchor).err().unwrap();
        assert_eq!(refused.problem, ChainProblem::HeadAltered);
    }
}
