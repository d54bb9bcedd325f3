//! Who may do what over HTTP: the API token, browser sign-in, signed session links, and the
//! cap on live event streams.
//!
//! Rules (documented in the README, "Access"):
//! - Operators hold `PATCHPILOT_API_TOKEN`. They send it as `Authorization: Bearer …`, or sign
//!   a browser in with it at `/signin`. They may list, start and cancel sessions and read all.
//! - A blank or whitespace token is no token: every operator route is disabled (503), never
//!   open. This is checked here, whatever the settings layer passed in.
//! - A session of a public repository is readable (page, events, JSON) by anyone with its id
//!   (128 random bits). A session of a private repository, or of unknown visibility (API, CLI,
//!   rows recorded before visibility was stored), needs an operator or a signed link
//!   (`session::links`), so a link in a comment never opens private output to whoever has
//!   the URL after the link expired, or for another session.
//! - Browser sign-in sets one cookie, `patchpilot_auth=<expiry>.<HMAC>`: HttpOnly,
//!   SameSite=Strict, Secure when the public URL is https, valid [`SIGN_IN_LIFETIME`]. Its key
//!   is derived from the API token, so changing the token signs every browser out. No
//!   server-side session table is needed across replicas.
//! - CSRF: besides SameSite=Strict, every cookie-authenticated POST must carry an `Origin` (or
//!   `Referer`) naming this server.

use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::session::links::{LinkSigner, derive_key};
use crate::store::Session;
use crate::webhook::signature::WebhookSecrets;

/// How long a browser stays signed in.
pub const SIGN_IN_LIFETIME: Duration = Duration::hours(12);
/// Live event streams open at once on this replica; more get 503 with `Retry-After`.
pub const MAX_EVENT_STREAMS: usize = 64;
/// A stream ends after this long; the browser reconnects with `Last-Event-ID` and loses nothing.
pub const MAX_STREAM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);

pub const COOKIE_NAME: &str = "patchpilot_auth";

/// Access settings and shared limits, built once at start-up.
pub struct WebAccess {
    api_token: Option<SecretString>,
    sign_in_key: Option<[u8; 32]>,
    links: Option<LinkSigner>,
    secure_cookies: bool,
    /// `scheme://host[:port]` of `PATCHPILOT_PUBLIC_URL`: behind a proxy that rewrites `Host`,
    /// form posts carry this origin.
    public_origin: Option<String>,
    streams: Arc<Semaphore>,
}

/// Why an operator route refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No (non-blank) API token is configured.
    Disabled,
    /// A token is configured but the request did not carry it.
    Unauthorized,
}

/// `?expires=…&sig=…` of a signed session link.
#[derive(Debug, Default, Deserialize)]
pub struct LinkQuery {
    pub expires: Option<i64>,
    pub sig: Option<String>,
}

impl LinkQuery {
    /// The same query for links the page builds (events, JSON), or "" when unsigned.
    pub fn to_query(&self) -> String {
        match (self.expires, &self.sig) {
            (Some(expires), Some(sig)) => {
                format!("expires={expires}&sig={}", urlencode(sig))
            }
            _ => String::new(),
        }
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl WebAccess {
    pub fn new(
        api_token: Option<&SecretString>,
        webhook_secrets: Option<&WebhookSecrets>,
        public_url: Option<&url::Url>,
    ) -> Self {
        let api_token = api_token
            .map(|t| t.expose_secret().trim())
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()));
        let sign_in_key = api_token.as_ref().map(|t| {
            derive_key(
                t.expose_secret().as_bytes(),
                "patchpilot/browser-sign-in/v1",
            )
        });
        let links = webhook_secrets.and_then(WebhookSecrets::link_signer);
        Self {
            api_token,
            sign_in_key,
            links,
            secure_cookies: public_url.is_some_and(|u| u.scheme() == "https"),
            public_origin: public_url.map(|u| u.origin().ascii_serialization()),
            streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
        }
    }

    /// The signer for private sessions' links, when a webhook secret is configured.
    pub fn link_signer(&self) -> Option<&LinkSigner> {
        self.links.as_ref()
    }

    /// Whether operator routes are enabled at all.
    pub fn enabled(&self) -> bool {
        self.api_token.is_some()
    }

    /// Checks `Authorization: Bearer <token>`.
    pub fn bearer(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let token = self.api_token.as_ref().ok_or(Denied::Disabled)?;
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if self.token_matches(token, presented) {
            Ok(())
        } else {
            Err(Denied::Unauthorized)
        }
    }

    fn token_matches(&self, token: &SecretString, presented: &str) -> bool {
        !presented.is_empty()
            && bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes()))
    }

    /// Checks a token typed into the sign-in form.
    pub fn token_is(&self, presented: &str) -> Result<(), Denied> {
        let token = self.api_token.as_ref().ok_or(Denied::Disabled)?;
        if self.token_matches(token, presented.trim()) {
            Ok(())
        } else {
            Err(Denied::Unauthorized)
        }
    }

    /// Bearer token or a valid sign-in cookie.
    pub fn operator(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<(), Denied> {
        match self.bearer(headers) {
            Err(Denied::Unauthorized) if self.signed_in(headers, now) => Ok(()),
            other => other,
        }
    }

    fn cookie_mac(&self, expires: i64) -> Option<Hmac<Sha256>> {
        let key = self.sign_in_key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"browser\n");
        mac.update(expires.to_string().as_bytes());
        Some(mac)
    }

    /// Whether the request carries an unexpired sign-in cookie made with the current token.
    pub fn signed_in(&self, headers: &HeaderMap, now: DateTime<Utc>) -> bool {
        let Some(value) = cookie(headers, COOKIE_NAME) else {
            return false;
        };
        let Some((expires, sig)) = value.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(sig)) = (expires.parse::<i64>(), hex::decode(sig)) else {
            return false;
        };
        expires > now.timestamp()
            && self
                .cookie_mac(expires)
                .is_some_and(|mac| mac.verify_slice(&sig).is_ok())
    }

    /// The `Set-Cookie` value that signs a browser in, or `None` when no token is configured.
    pub fn sign_in_cookie(&self, now: DateTime<Utc>) -> Option<String> {
        let expires = (now + SIGN_IN_LIFETIME).timestamp();
        let sig = hex::encode(self.cookie_mac(expires)?.finalize().into_bytes());
        Some(format!(
            "{COOKIE_NAME}={expires}.{sig}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SIGN_IN_LIFETIME.num_seconds(),
            if self.secure_cookies { "; Secure" } else { "" }
        ))
    }

    /// The `Set-Cookie` value that signs a browser out.
    pub fn sign_out_cookie(&self) -> String {
        format!(
            "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// Whether this request may read `session` (page, events, JSON).
    pub fn may_read(
        &self,
        session: &Session,
        headers: &HeaderMap,
        link: &LinkQuery,
        now: DateTime<Utc>,
    ) -> bool {
        if !session.private || self.operator(headers, now).is_ok() {
            return true;
        }
        match (&self.links, link.expires, &link.sig) {
            (Some(signer), Some(expires), Some(sig)) => {
                signer.verify(&session.id, expires, sig, now)
            }
            _ => false,
        }
    }

    /// CSRF check for cookie-authenticated form posts: `Origin` (or, without it, `Referer`)
    /// must be `PATCHPILOT_PUBLIC_URL`'s origin or name the host the request was sent to.
    pub fn same_origin(&self, headers: &HeaderMap) -> bool {
        let source = headers
            .get(http::header::ORIGIN)
            .or_else(|| headers.get(http::header::REFERER))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url::Url::parse(v).ok());
        let Some(source) = source else {
            return false;
        };
        if self
            .public_origin
            .as_deref()
            .is_some_and(|origin| origin == source.origin().ascii_serialization())
        {
            return true;
        }
        same_host(headers, &source)
    }

    /// A slot for one live event stream, or `None` when all are taken.
    pub fn stream_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.streams.clone().try_acquire_owned().ok()
    }
}

/// One cookie's value from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether `source` names the host in the request's `Host` header.
fn same_host(headers: &HeaderMap, source: &url::Url) -> bool {
    let Some(host) = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let authority = match (source.host_str(), source.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: &str) -> WebAccess {
        WebAccess::new(Some(&SecretString::from(token.to_owned())), None, None)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn a_blank_token_disables_operator_routes() {
        for blank in ["", "   ", "\t\n"] {
            let access = access(blank);
            assert!(!access.enabled());
            assert_eq!(access.bearer(&HeaderMap::new()), Err(Denied::Disabled));
            assert_eq!(access.bearer(&bearer("")), Err(Denied::Disabled));
            assert_eq!(access.token_is(""), Err(Denied::Disabled));
            assert_eq!(access.sign_in_cookie(Utc::now()), None);
        }
    }

    #[test]
    fn the_token_must_match() {
        let access = access(" secret ");
        assert_eq!(access.bearer(&bearer("secret")), Ok(()));
        assert_eq!(access.bearer(&bearer("secreT")), Err(Denied::Unauthorized));
        assert_eq!(access.bearer(&HeaderMap::new()), Err(Denied::Unauthorized));
        assert_eq!(access.token_is(""), Err(Denied::Unauthorized));
    }

    #[test]
    fn sign_in_cookies_expire_and_die_with_the_token() {
        let now = Utc::now();
        let set = access("secret").sign_in_cookie(now).unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let value = set.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("a=b; {value}").parse().unwrap(),
        );
        assert!(access("secret").signed_in(&headers, now));
        assert!(access("secret").operator(&headers, now).is_ok());
        assert!(!access("secret").signed_in(&headers, now + Duration::hours(13)));
        assert!(!access("rotated").signed_in(&headers, now));
    }

    #[test]
    fn form_posts_must_come_from_this_origin() {
        let access = access("secret");
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert!(!access.same_origin(&headers));
        headers.insert(
            http::header::ORIGIN,
            "http://127.0.0.1:3000".parse().unwrap(),
        );
        assert!(access.same_origin(&headers));
        headers.insert(
            http::header::ORIGIN,
            "https://evil.example".parse().unwrap(),
        );
        assert!(!access.same_origin(&headers));
        headers.insert(http::header::ORIGIN, "null".parse().unwrap());
        assert!(!access.same_origin(&headers));

        // Behind a proxy that rewrites Host, the public URL's origin is accepted.
        let public: url::Url = "https://pp.example/base/".parse().unwrap();
        let proxied = WebAccess::new(
            Some(&SecretString::from("secret".to_owned())),
            None,
            Some(&public),
        );
        headers.insert(http::header::ORIGIN, "https://pp.example".parse().unwrap());
        assert!(proxied.same_origin(&headers));
        assert!(!access.same_origin(&headers));
        assert!(
            proxied
                .sign_in_cookie(Utc::now())
                .unwrap()
                .ends_with("; Secure")
        );
    }
}
