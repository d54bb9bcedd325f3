//! Links to session pages, signed when the session's repository is private.
//!
//! A public repository's session page is readable by anyone who has its id (128 random bits).
//! A private repository's page, event stream and JSON need the API token (or a browser signed
//! in with it), or a link signed here: `?expires=<unix seconds>&sig=<hex HMAC-SHA256>` over the
//! session id and the expiry. Comments on a private repository are seen only by people who can
//! read that repository, and the signature stops the link from working for longer than
//! [`LINK_LIFETIME`] or for any other session.
//!
//! Keys are derived from a secret the operator already keeps (the webhook secret): the first
//! secret signs, all verify, so rotating `GITHUB_WEBHOOK_SECRET` as "new,old" keeps old links
//! working until the old secret is removed. Every replica with the same secret accepts the
//! same links.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a signed link works.
pub const LINK_LIFETIME: Duration = Duration::days(14);

/// Signs and checks session links.
#[derive(Clone)]
pub struct LinkSigner {
    /// Derived keys; the first signs.
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkSigner([{} keys redacted])", self.keys.len())
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

/// A key for one purpose, derived from an operator secret (HMAC as a KDF).
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    let mut mac = mac(secret);
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

impl LinkSigner {
    /// A signer from operator secrets (blank ones skipped); `None` when none is left.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let keys: Vec<[u8; 32]> = secrets
            .into_iter()
            .filter(|s| !s.trim_ascii().is_empty())
            .map(|s| derive_key(s, "patchpilot/session-link/v1"))
            .collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    fn signature(key: &[u8; 32], session_id: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = mac(key);
        mac.update(session_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string (`expires=…&sig=…`) that opens `session_id` until `expires`.
    pub fn sign(&self, session_id: &str, expires: DateTime<Utc>) -> String {
        let expires = expires.timestamp();
        let sig = Self::signature(&self.keys[0], session_id, expires)
            .finalize()
            .into_bytes();
        format!("expires={expires}&sig={}", hex::encode(sig))
    }

    /// Whether `sig` signs `session_id` until `expires`, and that time is still ahead.
    pub fn verify(&self, session_id: &str, expires: i64, sig: &str, now: DateTime<Utc>) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        expires > now.timestamp()
            && self.keys.iter().any(|key| {
                // `verify_slice` compares in constant time.
                Self::signature(key, session_id, expires)
                    .verify_slice(&sig)
                    .is_ok()
            })
    }
}

/// The link to put in a comment, check run or API answer for a session; `None` when no public
/// URL is configured (a relative link on GitHub would point at github.com).
///
/// Private sessions get a signed link valid for [`LINK_LIFETIME`] from `now` when a signer is
/// configured; without one the plain link still needs the API token.
pub fn session_link(
    public_url: Option<&url::Url>,
    session_id: &str,
    private: bool,
    signer: Option<&LinkSigner>,
    now: DateTime<Utc>,
) -> Option<String> {
    let base = public_url?.as_str().trim_end_matches('/');
    let path = format!("{base}/sessions/{session_id}");
    Some(match (private, signer) {
        (true, Some(signer)) => format!("{path}?{}", signer.sign(session_id, now + LINK_LIFETIME)),
        _ => path,
    })
}

/// A session page's address for the API and local runs: absolute under the public URL, else
/// relative to this server (fine there; never for text posted on GitHub, see [`session_link`]).
pub fn session_page_url(public_url: Option<&url::Url>, session_id: &str) -> String {
    match public_url {
        Some(base) => format!(
            "{}/sessions/{session_id}",
            base.as_str().trim_end_matches('/')
        ),
        None => format!("/sessions/{session_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new([b"webhook-secret".as_slice()]).unwrap()
    }

    fn parts(query: &str) -> (i64, String) {
        let (e, s) = query.split_once('&').unwrap();
        (
            e.strip_prefix("expires=").unwrap().parse().unwrap(),
            s.strip_prefix("sig=").unwrap().to_owned(),
        )
    }

    #[test]
    fn a_signed_link_opens_its_session_until_it_expires() {
        let now = Utc::now();
        let (expires, sig) = parts(&signer().sign("abc", now + Duration::hours(1)));
        assert!(signer().verify("abc", expires, &sig, now));
        assert!(!signer().verify("abd", expires, &sig, now), "other session");
        assert!(
            !signer().verify("abc", expires + 1, &sig, now),
            "extended expiry"
        );
        assert!(
            !signer().verify("abc", expires, &sig, now + Duration::hours(2)),
            "expired"
        );
        assert!(!signer().verify("abc", expires, "zz", now), "not hex");
        let other = LinkSigner::new([b"another".as_slice()]).unwrap();
        assert!(!other.verify("abc", expires, &sig, now), "other key");
    }

    #[test]
    fn rotation_keeps_old_links_and_blank_secrets_sign_nothing() {
        let now = Utc::now();
        let (expires, sig) = parts(&signer().sign("abc", now + Duration::hours(1)));
        let rotated = LinkSigner::new([b"new".as_slice(), b"webhook-secret".as_slice()]).unwrap();
        assert!(rotated.verify("abc", expires, &sig, now));
        assert!(LinkSigner::new([b"".as_slice(), b"  ".as_slice()]).is_none());
    }

    #[test]
    fn links_need_a_public_url_and_private_ones_are_signed() {
        let base: url::Url = "https://pp.example/".parse().unwrap();
        let now = Utc::now();
        assert_eq!(session_link(None, "abc", false, None, now), None);
        assert_eq!(
            session_link(Some(&base), "abc", false, Some(&signer()), now).unwrap(),
            "https://pp.example/sessions/abc"
        );
        let private = session_link(Some(&base), "abc", true, Some(&signer()), now).unwrap();
        let query = private
            .strip_prefix("https://pp.example/sessions/abc?")
            .unwrap();
        let (expires, sig) = parts(query);
        assert!(signer().verify("abc", expires, &sig, now));
    }
}
