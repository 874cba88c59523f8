//! Authentication, in the wire formats of the seed product's clients:
//!
//! - **Basic**: `Authorization: Basic base64(user:password)` on the upgrade request.
//! - **URL**: the WebSocket is opened at `/sgc/auth/url/<user>/<password>[/rest]`
//!   (percent-encoded segments).
//! - **Session**: a plain HTTP `GET /sgc/req/auth/session/<user>/<password>` returns a token
//!   (`200`, the token as the body); the WebSocket is then opened at
//!   `/sgc/auth/session/<token>[/rest]`. Tokens are UUID v4 (122 random bits from the OS),
//!   single use by default, expire after [`AuthConfig::session_ttl`], and at most
//!   [`AuthConfig::max_sessions`] exist (the oldest is evicted first).
//!
//! Credentials are checked against [`AuthConfig::users`] (compared in constant time), then,
//! for a user not in the list, against the hook set with [`crate::Server::on_auth`].
//!
//! **Paths**: after URL or Session authentication, the connection's path is what follows the
//! credential segments (`/sgc/auth/url/ann/secret/room/1` → `/room/1`; nothing → `/`), with the
//! query kept. Hooks and logs never see the password or the token.
//!
//! **Security**: URL and Session credentials travel in the request URL, which proxies and
//! servers tend to log: use them over TLS only. Basic credentials are merely base64-encoded:
//! TLS again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::http::{HttpResponse, Request};

/// The hook consulted for users not in [`AuthConfig::users`]: `(request, user, password)`,
/// returning whether to accept.
pub type AuthHook = dyn Fn(&Request, &str, &str) -> bool + Send + Sync;

/// Authentication settings ([`crate::ServerConfig::auth`]). Disabled by default.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Whether authentication is required. Default `false`.
    pub enabled: bool,
    /// Accept HTTP Basic credentials. Default `true`.
    pub basic: bool,
    /// Accept credentials in the URL path. Default `true`.
    pub url: bool,
    /// Accept session tokens (and serve the session endpoint). Default `true`.
    pub session: bool,
    /// Known users: `(name, password)` pairs.
    pub users: Vec<(String, String)>,
    /// Let connections without credentials in, unauthenticated
    /// ([`crate::Connection::user`] is `None`). Wrong credentials are still refused.
    /// Default `false`.
    pub allow_non_auth: bool,
    /// Realm named in `WWW-Authenticate`. Default `"syncws"`.
    pub realm: String,
    /// Lifetime of a session token. Default 60 s.
    pub session_ttl: Duration,
    /// Most session tokens alive at once; the oldest is evicted beyond it. Default 10 000.
    pub max_sessions: usize,
    /// A token can be used once (default `true`); `false` lets it be reused until it expires.
    pub single_use_sessions: bool,
    /// Longest user name or password accepted, in bytes. Default 256; longer gets 400.
    pub max_credential_len: usize,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print passwords.
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("basic", &self.basic)
            .field("url", &self.url)
            .field("session", &self.session)
            .field(
                "users",
                &self.users.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
            )
            .field("allow_non_auth", &self.allow_non_auth)
            .field("session_ttl", &self.session_ttl)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            basic: true,
            url: true,
            session: true,
            users: Vec::new(),
            allow_non_auth: false,
            realm: "syncws".into(),
            session_ttl: Duration::from_secs(60),
            max_sessions: 10_000,
            single_use_sessions: true,
            max_credential_len: 256,
        }
    }
}

impl AuthConfig {
    /// Enabled, all three methods, no users yet.
    pub fn new() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// Chooses the accepted methods.
    pub fn methods(mut self, basic: bool, url: bool, session: bool) -> Self {
        self.basic = basic;
        self.url = url;
        self.session = session;
        self
    }

    /// Adds a user.
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Parses `user=password` lines (blank lines and `#` comments skipped), as the seed
    /// product's AuthUsers list.
    pub fn users_from_lines(mut self, text: &str) -> Result<Self, crate::Error> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((u, p)) if !u.trim().is_empty() => self.users.push((u.trim().into(), p.into())),
                _ => {
                    return Err(crate::Error::Config(format!(
                        "users line {}: expected user=password",
                        i + 1
                    )))
                }
            }
        }
        Ok(self)
    }

    /// Sets [`AuthConfig::allow_non_auth`].
    pub fn allow_non_auth(mut self, v: bool) -> Self {
        self.allow_non_auth = v;
        self
    }

    /// Sets [`AuthConfig::session_ttl`].
    pub fn session_ttl(mut self, v: Duration) -> Self {
        self.session_ttl = v;
        self
    }

    /// Sets [`AuthConfig::max_sessions`].
    pub fn max_sessions(mut self, v: usize) -> Self {
        self.max_sessions = v;
        self
    }

    /// Sets [`AuthConfig::single_use_sessions`].
    pub fn single_use_sessions(mut self, v: bool) -> Self {
        self.single_use_sessions = v;
        self
    }

    /// Sets [`AuthConfig::realm`].
    pub fn realm(mut self, v: impl Into<String>) -> Self {
        self.realm = v.into();
        self
    }
}

/// Compares two secrets in time that depends only on their lengths' maximum.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Decodes one percent-encoded path segment into UTF-8.
pub(crate) fn percent_decode(seg: &str) -> Option<String> {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

struct Session {
    user: String,
    expires: Instant,
}

/// Live session tokens, bounded in number.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<(HashMap<String, Session>, VecDeque<String>)>,
}

impl Sessions {
    fn issue(&self, user: &str, cfg: &AuthConfig) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *g;
        let now = Instant::now();
        // Drop expired tokens from the front, and the oldest beyond the bound.
        while let Some(t) = order.front() {
            let expired = map.get(t).is_none_or(|s| s.expires <= now);
            if expired || map.len() >= cfg.max_sessions.max(1) {
                let t = order.pop_front().unwrap_or_default();
                map.remove(&t);
            } else {
                break;
            }
        }
        map.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                expires: now + cfg.session_ttl,
            },
        );
        order.push_back(token.clone());
        token
    }

    fn redeem(&self, token: &str, single_use: bool) -> Option<String> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, _) = &mut *g;
        let now = Instant::now();
        let s = map.get(token)?;
        if s.expires <= now {
            map.remove(token);
            return None;
        }
        let user = s.user.clone();
        if single_use {
            map.remove(token);
        }
        Some(user)
    }
}

/// The outcome of authenticating an upgrade request.
pub(crate) enum Outcome {
    /// Authenticated as `user`; the connection's target is `target` (credentials removed).
    User { user: String, target: String },
    /// No credentials, let in unauthenticated.
    Anonymous,
    /// Refused with this response.
    Refuse(HttpResponse),
}

pub(crate) struct Auth<'a> {
    pub(crate) cfg: &'a AuthConfig,
    pub(crate) hook: Option<&'a AuthHook>,
    pub(crate) sessions: &'a Sessions,
}

fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

fn rebuild(rest: &[&str], query: Option<&str>) -> String {
    let mut t = String::from("/");
    t.push_str(&rest.join("/"));
    if let Some(q) = query {
        t.push('?');
        t.push_str(q);
    }
    t
}

impl Auth<'_> {
    fn unauthorized(&self) -> HttpResponse {
        let mut r = HttpResponse::text(401, "authentication required\n");
        if self.cfg.basic {
            r = r.header(
                "WWW-Authenticate",
                format!("Basic realm=\"{}\"", self.cfg.realm.replace('"', "'")),
            );
        }
        r
    }

    fn bad(&self, why: &str) -> HttpResponse {
        HttpResponse::text(400, format!("bad credentials: {why}\n"))
    }

    /// Checks a user name and password: the list first (constant time), then the hook.
    fn verify(&self, req: &Request, user: &str, password: &str) -> bool {
        let mut known = false;
        let mut ok = false;
        for (u, p) in &self.cfg.users {
            let name_match = ct_eq(u.as_bytes(), user.as_bytes());
            let pass_match = ct_eq(p.as_bytes(), password.as_bytes());
            known |= name_match;
            ok |= name_match & pass_match;
        }
        if known {
            return ok;
        }
        match self.hook {
            Some(h) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(req, user, password)))
                .unwrap_or(false),
            None => false,
        }
    }

    fn check_len(&self, user: &str, password: &str) -> Result<(), HttpResponse> {
        let max = self.cfg.max_credential_len;
        if user.len() > max || password.len() > max {
            return Err(self.bad("too long"));
        }
        if user.is_empty() {
            return Err(self.unauthorized());
        }
        Ok(())
    }

    /// Answers the session endpoint and other `/sgc/` paths for plain HTTP requests; `None`
    /// for paths that are not the library's.
    pub(crate) fn http(&self, req: &Request) -> Option<HttpResponse> {
        let (path, _) = split_target(&req.target);
        if !path.starts_with("/sgc/") {
            return None;
        }
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        if self.cfg.session && segs.len() == 6 && segs[..4] == ["sgc", "req", "auth", "session"] {
            if req.method != "GET" {
                return Some(HttpResponse::text(405, "method not allowed\n").header("Allow", "GET"));
            }
            let (Some(user), Some(pass)) = (percent_decode(segs[4]), percent_decode(segs[5])) else {
                return Some(self.bad("bad percent-encoding"));
            };
            if let Err(r) = self.check_len(&user, &pass) {
                return Some(r);
            }
            let shown = Request {
                target: format!("/sgc/req/auth/session/{}/***", segs[4]),
                ..req.clone()
            };
            if !self.verify(&shown, &user, &pass) {
                log::info!("{}: session request refused for user {user:?}", req.peer);
                return Some(self.unauthorized());
            }
            let token = self.sessions.issue(&user, self.cfg);
            log::info!("{}: session issued for user {user:?}", req.peer);
            return Some(
                HttpResponse::text(200, token)
                    .header("Cache-Control", "no-store")
                    .header("X-Session-TTL", self.cfg.session_ttl.as_secs().to_string()),
            );
        }
        Some(HttpResponse::text(404, "not found\n"))
    }

    /// Authenticates an upgrade request.
    pub(crate) fn upgrade(&self, req: &Request) -> Outcome {
        let (path, query) = split_target(&req.target);
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        // URL: /sgc/auth/url/<user>/<password>[/rest]
        if self.cfg.url && segs.len() >= 5 && segs[..3] == ["sgc", "auth", "url"] {
            let (Some(user), Some(pass)) = (percent_decode(segs[3]), percent_decode(segs[4])) else {
                return Outcome::Refuse(self.bad("bad percent-encoding"));
            };
            if let Err(r) = self.check_len(&user, &pass) {
                return Outcome::Refuse(r);
            }
            let target = rebuild(&segs[5..], query);
            // The hook sees the request without the credentials in its path.
            let shown = Request {
                target: target.clone(),
                ..req.clone()
            };
            return if self.verify(&shown, &user, &pass) {
                Outcome::User { user, target }
            } else {
                log::info!("{}: URL authentication failed for user {user:?}", req.peer);
                Outcome::Refuse(self.unauthorized())
            };
        }
        // Session: /sgc/auth/session/<token>[/rest]
        if self.cfg.session && segs.len() >= 4 && segs[..3] == ["sgc", "auth", "session"] {
            return match self.sessions.redeem(segs[3], self.cfg.single_use_sessions) {
                Some(user) => Outcome::User {
                    user,
                    target: rebuild(&segs[4..], query),
                },
                None => {
                    log::info!("{}: unknown, used or expired session token", req.peer);
                    Outcome::Refuse(self.unauthorized())
                }
            };
        }
        // Basic.
        if self.cfg.basic {
            if let Some(h) = req.header("authorization") {
                let h = h.trim();
                let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
                if scheme.eq_ignore_ascii_case("basic") {
                    let rest = rest.trim();
                    if rest.len() > 4 * self.cfg.max_credential_len {
                        return Outcome::Refuse(self.bad("too long"));
                    }
                    let Ok(raw) = B64.decode(rest) else {
                        return Outcome::Refuse(self.bad("bad base64"));
                    };
                    let Ok(text) = String::from_utf8(raw) else {
                        return Outcome::Refuse(self.bad("not UTF-8"));
                    };
                    let Some((user, pass)) = text.split_once(':') else {
                        return Outcome::Refuse(self.bad("missing colon"));
                    };
                    if let Err(r) = self.check_len(user, pass) {
                        return Outcome::Refuse(r);
                    }
                    return if self.verify(req, user, pass) {
                        Outcome::User {
                            user: user.to_string(),
                            target: req.target.clone(),
                        }
                    } else {
                        log::info!("{}: Basic authentication failed for user {user:?}", req.peer);
                        Outcome::Refuse(self.unauthorized())
                    };
                }
            }
        }
        if path.starts_with("/sgc/") {
            return Outcome::Refuse(HttpResponse::text(404, "not found\n"));
        }
        if self.cfg.allow_non_auth {
            Outcome::Anonymous
        } else {
            Outcome::Refuse(self.unauthorized())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn sessions_bounded_and_single_use() {
        let cfg = AuthConfig::new().max_sessions(3);
        let s = Sessions::default();
        let toks: Vec<String> = (0..5).map(|i| s.issue(&format!("u{i}"), &cfg)).collect();
        assert_eq!(s.inner.lock().unwrap().0.len(), 3);
        assert_eq!(s.redeem(&toks[0], true), None, "oldest evicted");
        assert_eq!(s.redeem(&toks[4], true).as_deref(), Some("u4"));
        assert_eq!(s.redeem(&toks[4], true), None, "single use");
        let t = s.issue("x", &cfg.clone().session_ttl(Duration::ZERO));
        assert_eq!(s.redeem(&t, true), None, "expired");
    }
}
