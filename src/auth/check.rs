//! Checking credentials: the session endpoint for plain HTTP requests, and the three methods
//! (URL, Session, Basic) for upgrade requests.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::sessions::Refused;
use super::throttle::retry_after_secs;
use super::{AuthConfig, AuthHook, Sessions, Throttle};
use crate::http::{HttpResponse, Request};

/// Compares two secrets in time that depends only on their lengths' maximum.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Decodes one percent-encoded path segment into UTF-8.
fn percent_decode(seg: &str) -> Option<String> {
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

/// The outcome of authenticating an upgrade request.
pub(crate) enum Outcome {
    /// Authenticated as `user`; the connection's target is `target` (credentials removed).
    User { user: String, target: String },
    /// No credentials, let in unauthenticated.
    Anonymous,
    /// Refused with this response.
    Refuse(HttpResponse),
}

/// One authentication check: the settings, the hook, the live sessions, the failure counts,
/// and the time.
pub(crate) struct Auth<'a> {
    pub(crate) cfg: &'a AuthConfig,
    pub(crate) hook: Option<&'a AuthHook>,
    pub(crate) sessions: &'a Sessions,
    pub(crate) throttle: &'a Throttle,
    pub(crate) now: Instant,
}

fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// A refusal that says when to come back: `429 Too Many Requests` or `503`.
fn retry_later(status: u16, body: &str, wait: Duration) -> HttpResponse {
    HttpResponse::text(status, body).header("Retry-After", retry_after_secs(wait).to_string())
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

    /// [`Auth::verify`] under the throttle: `Err(429)` when the client's address or the user
    /// is locked out (the password is not compared); otherwise whether the credentials are
    /// right, the attempt counted as a failure unless they are.
    fn attempt(&self, req: &Request, user: &str, password: &str) -> Result<bool, HttpResponse> {
        let ip = req.peer.ip();
        if let Err(wait) = self.throttle.begin(ip, user, self.cfg, self.now) {
            log::warn!("{}: login throttled for user {user:?}", req.peer);
            return Err(retry_later(429, "too many failed logins\n", wait));
        }
        let ok = self.verify(req, user, password);
        if ok {
            self.throttle.succeeded(ip, user);
        }
        Ok(ok)
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

    /// Decodes a `user` and `password` pair of path segments and checks their lengths.
    fn segments(&self, user: &str, pass: &str) -> Result<(String, String), HttpResponse> {
        let (Some(user), Some(pass)) = (percent_decode(user), percent_decode(pass)) else {
            return Err(self.bad("bad percent-encoding"));
        };
        self.check_len(&user, &pass)?;
        Ok((user, pass))
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
            return Some(self.issue_session(req, segs[4], segs[5]));
        }
        Some(HttpResponse::text(404, "not found\n"))
    }

    /// `GET /sgc/req/auth/session/<user>/<password>`: a token, or why not.
    fn issue_session(&self, req: &Request, user_seg: &str, pass_seg: &str) -> HttpResponse {
        if req.method != "GET" {
            return HttpResponse::text(405, "method not allowed\n").header("Allow", "GET");
        }
        let (user, pass) = match self.segments(user_seg, pass_seg) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let shown = Request {
            target: format!("/sgc/req/auth/session/{user_seg}/***"),
            ..req.clone()
        };
        match self.attempt(&shown, &user, &pass) {
            Ok(true) => {}
            Ok(false) => {
                log::info!("{}: session request refused for user {user:?}", req.peer);
                return self.unauthorized();
            }
            Err(r) => return r,
        }
        let token = match self.sessions.issue(&user, self.cfg, self.now) {
            Ok(t) => t,
            Err(why) => return self.no_session(req, &user, why),
        };
        log::info!("{}: session issued for user {user:?}", req.peer);
        HttpResponse::text(200, token)
            .header("Cache-Control", "no-store")
            .header("X-Session-TTL", self.cfg.session_ttl.as_secs().to_string())
    }

    /// The refusal of a session token to a user who may have one, but not now.
    fn no_session(&self, req: &Request, user: &str, why: Refused) -> HttpResponse {
        log::warn!("{}: no session token for user {user:?}: {why:?}", req.peer);
        match why {
            Refused::UserFull(wait) => retry_later(429, "too many sessions for this user\n", wait),
            Refused::Full(wait) => retry_later(503, "too many sessions\n", wait),
        }
    }

    /// Authenticates an upgrade request.
    pub(crate) fn upgrade(&self, req: &Request) -> Outcome {
        let (path, query) = split_target(&req.target);
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        if self.cfg.url && segs.len() >= 5 && segs[..3] == ["sgc", "auth", "url"] {
            return self.url(req, &segs, query);
        }
        if self.cfg.session && segs.len() >= 4 && segs[..3] == ["sgc", "auth", "session"] {
            return self.session(req, &segs, query);
        }
        if let Some(outcome) = self.basic(req) {
            return outcome;
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

    /// URL: `/sgc/auth/url/<user>/<password>[/rest]`.
    fn url(&self, req: &Request, segs: &[&str], query: Option<&str>) -> Outcome {
        let (user, pass) = match self.segments(segs[3], segs[4]) {
            Ok(c) => c,
            Err(r) => return Outcome::Refuse(r),
        };
        let target = rebuild(&segs[5..], query);
        // The hook sees the request without the credentials in its path.
        let shown = Request {
            target: target.clone(),
            ..req.clone()
        };
        match self.attempt(&shown, &user, &pass) {
            Ok(true) => Outcome::User { user, target },
            Ok(false) => {
                log::info!("{}: URL authentication failed for user {user:?}", req.peer);
                Outcome::Refuse(self.unauthorized())
            }
            Err(r) => Outcome::Refuse(r),
        }
    }

    /// Session: `/sgc/auth/session/<token>[/rest]`.
    fn session(&self, req: &Request, segs: &[&str], query: Option<&str>) -> Outcome {
        match self
            .sessions
            .redeem(segs[3], self.cfg.single_use_sessions, self.now)
        {
            Some(user) => Outcome::User {
                user,
                target: rebuild(&segs[4..], query),
            },
            None => {
                log::info!("{}: unknown, used or expired session token", req.peer);
                Outcome::Refuse(self.unauthorized())
            }
        }
    }

    /// Basic: `Authorization: Basic base64(user:password)`; `None` without such a header.
    fn basic(&self, req: &Request) -> Option<Outcome> {
        if !self.cfg.basic {
            return None;
        }
        let h = req.header("authorization")?.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let rest = rest.trim();
        if rest.len() > 4 * self.cfg.max_credential_len {
            return Some(Outcome::Refuse(self.bad("too long")));
        }
        let Ok(raw) = B64.decode(rest) else {
            return Some(Outcome::Refuse(self.bad("bad base64")));
        };
        let Ok(text) = String::from_utf8(raw) else {
            return Some(Outcome::Refuse(self.bad("not UTF-8")));
        };
        let Some((user, pass)) = text.split_once(':') else {
            return Some(Outcome::Refuse(self.bad("missing colon")));
        };
        if let Err(r) = self.check_len(user, pass) {
            return Some(Outcome::Refuse(r));
        }
        Some(match self.attempt(req, user, pass) {
            Ok(true) => Outcome::User {
                user: user.to_string(),
                target: req.target.clone(),
            },
            Ok(false) => {
                log::info!("{}: Basic authentication failed for user {user:?}", req.peer);
                Outcome::Refuse(self.unauthorized())
            }
            Err(r) => Outcome::Refuse(r),
        })
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
}
