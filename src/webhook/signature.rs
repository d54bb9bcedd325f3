//! `X-Hub-Signature-256` verification.
//!
//! GitHub signs the raw body with HMAC-SHA256 and sends `sha256=<hex>`. The comparison is
//! constant-time (`Mac::verify_slice`); every configured secret is tried so secrets can be
//! rotated without dropping deliveries. The legacy `X-Hub-Signature` (SHA-1) is not accepted.
//! <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::session::links::LinkSigner;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 must be `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("signature does not match the payload for any configured secret")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value) against `body`.
pub fn verify(
    secrets: &WebhookSecrets,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest.trim()).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let matches = secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `sha256=<hex>` for `body` under `secret` (used by the benchmark and tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The accepted webhook secrets, parsed from the comma-separated setting.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// `None` when no non-empty secret is given.
    pub fn parse(setting: &SecretString) -> Option<Self> {
        let secrets: Vec<SecretString> = setting
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        (!secrets.is_empty()).then_some(Self(secrets))
    }

    pub fn iter(&self) -> impl Iterator<Item = &SecretString> {
        self.0.iter()
    }

    /// The signer of session-page links, keyed by these secrets: the one derivation both the
    /// pipeline (which writes links) and the server (which checks them) use.
    pub fn link_signer(&self) -> Option<LinkSigner> {
        LinkSigner::new(self.iter().map(|s| s.expose_secret().as_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets([{} redacted])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn secrets(list: &str) -> WebhookSecrets {
        WebhookSecrets::parse(&SecretString::from(list.to_owned())).unwrap()
    }

    /// GitHub's documented test vector.
    const VECTOR_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn accepts_githubs_documented_test_vector() {
        let s = secrets("It's a Secret to Everybody");
        assert_eq!(verify(&s, b"Hello, World!", Some(VECTOR_SIG)), Ok(()));
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            VECTOR_SIG
        );
    }

    #[test]
    fn any_rotated_secret_is_accepted() {
        let s = secrets("old-secret,It's a Secret to Everybody");
        assert_eq!(verify(&s, b"Hello, World!", Some(VECTOR_SIG)), Ok(()));
    }

    #[test]
    fn rejects_wrong_missing_sha1_and_malformed() {
        let s = secrets("It's a Secret to Everybody");
        assert_eq!(
            verify(&s, b"Hello, World?", Some(VECTOR_SIG)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&s, b"Hello, World!", None),
            Err(SignatureError::Missing)
        );
        let sha1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";
        assert_eq!(
            verify(&s, b"Hello, World!", Some(sha1)),
            Err(SignatureError::Malformed)
        );
        for bad in ["sha256=", "sha256=zz", "sha256=abcd", "757107ea"] {
            assert_eq!(
                verify(&s, b"Hello, World!", Some(bad)),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_split_on_commas_and_skip_blanks() {
        let parsed =
            WebhookSecrets::parse(&SecretString::from(" old , new ,,".to_owned())).unwrap();
        let values: Vec<&str> = parsed.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(values, ["old", "new"]);
        assert!(WebhookSecrets::parse(&SecretString::from(" , ".to_owned())).is_none());
        assert_eq!(format!("{parsed:?}"), "WebhookSecrets([2 redacted])");
    }
}
