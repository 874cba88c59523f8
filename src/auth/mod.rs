//! Authentication, in the wire formats of sgcWebSockets' clients:
//!
//! - **Basic**: `Authorization: Basic base64(user:password)` on the upgrade request.
//! - **URL**: the WebSocket is opened at `/sgc/auth/url/<user>/<password>[/rest]`
//!   (percent-encoded segments).
//! - **Session**: a plain HTTP `GET /sgc/req/auth/session/<user>/<password>` returns a token
//!   (`200`, the token as the body); the WebSocket is then opened at
//!   `/sgc/auth/session/<token>[/rest]`. Tokens are UUID v4 (122 random bits from the OS),
//!   single use by default, expire after [`AuthConfig::session_ttl`]; at most
//!   [`AuthConfig::max_sessions_per_user`] per user (more: `429`) and
//!   [`AuthConfig::max_sessions`] in all (more: `503`) are alive at once. A live token is never
//!   evicted to make room.
//!
//! Credentials are checked against [`AuthConfig::users`] (compared in constant time), then,
//! for a user not in the list, against the hook set with [`crate::Server::on_auth`].
//!
//! **Paths**: after URL or Session authentication, the connection's path is what follows the
//! credential segments (`/sgc/auth/url/ann/secret/room/1` → `/room/1`; nothing → `/`), with the
//! query kept. Hooks and logs never see the password or the token.
//!
//! **Throttling**: failed logins (Basic, URL, and the session endpoint) are counted per client
//! address and per user name. After [`AuthConfig::max_failures`] within
//! [`AuthConfig::failure_window`], the address (or the user) is locked out for
//! [`AuthConfig::lockout`]: its attempts get `429 Too Many Requests` with `Retry-After`,
//! without the password being compared. Other addresses and users are unaffected; a success
//! resets the counts of its address and user. The counts live in a fixed table of
//! [`AuthConfig::max_tracked`] entries (under 100 bytes each: under 1 MB at the default),
//! keyed by a hash, the entry that failed least recently overwritten when it is full. IPv6
//! addresses are counted per /64.
//!
//! **Security**: URL and Session credentials travel in the request URL, which proxies and
//! servers tend to log: use them over TLS only. Basic credentials are merely base64-encoded:
//! TLS again.

mod check;
mod sessions;
mod throttle;

pub(crate) use check::{Auth, Outcome};
pub(crate) use sessions::Sessions;
pub(crate) use throttle::Throttle;

use std::time::Duration;

use crate::http::Request;

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
    /// Most session tokens alive at once, all users together; beyond it the session endpoint
    /// answers `503` with `Retry-After` (no live token is evicted). Default 10 000.
    pub max_sessions: usize,
    /// Most session tokens alive at once for one user; beyond it the session endpoint answers
    /// `429` with `Retry-After`. Default 16.
    pub max_sessions_per_user: usize,
    /// A token can be used once (default `true`); `false` lets it be reused until it expires.
    pub single_use_sessions: bool,
    /// Longest user name or password accepted, in bytes. Default 256; longer gets 400.
    pub max_credential_len: usize,
    /// Failed logins (per client address, and per user name) within
    /// [`AuthConfig::failure_window`] that lock it out for [`AuthConfig::lockout`]. Default 5;
    /// `0` turns throttling off.
    pub max_failures: u32,
    /// The window in which failures are counted: a count older than this starts again.
    /// Default 60 s.
    pub failure_window: Duration,
    /// How long a locked-out address or user gets `429` (with `Retry-After`), its passwords
    /// not compared. Default 60 s.
    pub lockout: Duration,
    /// Most addresses and user names whose failures are remembered at once (a fixed table,
    /// under 100 bytes an entry; full, it forgets the entry that failed least recently).
    /// Default 10 000 (under 1 MB).
    pub max_tracked: usize,
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
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("single_use_sessions", &self.single_use_sessions)
            .field("max_credential_len", &self.max_credential_len)
            .field("max_failures", &self.max_failures)
            .field("failure_window", &self.failure_window)
            .field("lockout", &self.lockout)
            .field("max_tracked", &self.max_tracked)
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
            max_sessions_per_user: 16,
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            max_tracked: 10_000,
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

    /// Parses `user=password` lines (blank lines and `#` comments skipped), as
    /// sgcWebSockets' AuthUsers list.
    pub fn users_from_lines(mut self, text: &str) -> Result<Self, crate::error::Error> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((u, p)) if !u.trim().is_empty() => self.users.push((u.trim().into(), p.into())),
                _ => {
                    return Err(crate::error::Error::Config(format!(
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

    /// Sets [`AuthConfig::max_sessions_per_user`].
    pub fn max_sessions_per_user(mut self, v: usize) -> Self {
        self.max_sessions_per_user = v;
        self
    }

    /// Sets [`AuthConfig::max_failures`] (`0`: no throttling).
    pub fn max_failures(mut self, v: u32) -> Self {
        self.max_failures = v;
        self
    }

    /// Sets [`AuthConfig::failure_window`].
    pub fn failure_window(mut self, v: Duration) -> Self {
        self.failure_window = v;
        self
    }

    /// Sets [`AuthConfig::lockout`].
    pub fn lockout(mut self, v: Duration) -> Self {
        self.lockout = v;
        self
    }

    /// Sets [`AuthConfig::max_tracked`].
    pub fn max_tracked(mut self, v: usize) -> Self {
        self.max_tracked = v;
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
