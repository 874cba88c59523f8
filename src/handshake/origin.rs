//! The Origin check of an upgrade request (see [`OriginPolicy`]): before authentication and
//! before any hook.

use crate::config::OriginPolicy;
use crate::http::{HttpResponse, Request};

/// `scheme://host[:port]` lower-cased, with the scheme's default port dropped; `None` when it
/// is not of that form (an opaque `null`, a path, user info).
fn normalize(origin: &str) -> Option<(String, String)> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => "",
    };
    let authority = rest.strip_suffix(default).unwrap_or(rest).to_string();
    Some((scheme.to_string(), authority))
}

/// The request's `Host`, lower-cased, without the default port of its scheme.
fn host_authority(req: &Request) -> Option<String> {
    let host = req.header("host")?.trim().to_ascii_lowercase();
    let default = if req.secure { ":443" } else { ":80" };
    Some(host.strip_suffix(default).unwrap_or(&host).to_string())
}

/// Whether `policy` lets `req` through; the 403 to answer when not.
pub(crate) fn check(policy: &OriginPolicy, req: &Request) -> Result<(), HttpResponse> {
    let origins: Vec<&str> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("origin"))
        .map(|(_, v)| v.as_str())
        .collect();
    let allowed = match origins.as_slice() {
        [] => policy.allow_missing,
        [origin] => allows(policy, req, origin),
        _ => false, // a browser sends one
    };
    if allowed {
        return Ok(());
    }
    log::info!("{}: upgrade refused: origin {origins:?} not allowed", req.peer);
    Err(HttpResponse::text(403, "origin not allowed\n"))
}

fn allows(policy: &OriginPolicy, req: &Request, origin: &str) -> bool {
    if policy.any {
        return true;
    }
    let Some(o) = normalize(origin) else {
        return false;
    };
    if policy.same_host && host_authority(req).is_some_and(|h| h == o.1) {
        return true;
    }
    policy.allowed.iter().filter_map(|a| normalize(a)).any(|a| a == o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, origins: &[&str]) -> Request {
        let mut headers = vec![("Host".to_string(), host.to_string())];
        headers.extend(origins.iter().map(|o| ("Origin".to_string(), o.to_string())));
        Request {
            method: "GET".into(),
            target: "/".into(),
            headers,
            peer: ([127, 0, 0, 1], 5000).into(),
            protocols: Vec::new(),
            secure: false,
            deflate: None,
        }
    }

    fn ok(p: &OriginPolicy, host: &str, origins: &[&str]) -> bool {
        check(p, &req(host, origins)).is_ok()
    }

    #[test]
    fn default_is_same_host_and_non_browsers() {
        let p = OriginPolicy::default();
        assert!(ok(&p, "chat.example:8080", &["http://chat.example:8080"]));
        assert!(
            ok(&p, "Chat.Example", &["HTTP://chat.example:80"]),
            "case and default port"
        );
        assert!(ok(&p, "chat.example", &[]), "no Origin: not a browser");
        assert!(!ok(&p, "chat.example", &["https://evil.example"]));
        assert!(
            !ok(&p, "chat.example:8080", &["http://chat.example:9090"]),
            "another port"
        );
        assert!(!ok(&p, "chat.example", &["null"]), "an opaque origin");
        assert!(!ok(
            &p,
            "chat.example",
            &["http://chat.example", "http://chat.example"]
        ));
    }

    #[test]
    fn allow_list() {
        let p = OriginPolicy::only(["https://app.example", "http://localhost:3000"]);
        assert!(ok(&p, "api.example", &["https://app.example"]));
        assert!(ok(&p, "api.example", &["https://app.example:443"]));
        assert!(ok(&p, "api.example", &["http://localhost:3000"]));
        assert!(!ok(&p, "api.example", &["http://app.example"]), "another scheme");
        assert!(
            !ok(&p, "api.example", &["https://api.example"]),
            "not even the own host"
        );
        assert!(!ok(&p, "api.example", &["https://app.example/path"]));
    }

    #[test]
    fn any_and_missing() {
        assert!(ok(&OriginPolicy::any(), "a", &["https://whatever.example"]));
        assert!(ok(&OriginPolicy::any(), "a", &["null"]));
        let strict = OriginPolicy::default().allow_missing(false);
        assert!(!ok(&strict, "a", &[]));
        let r = check(&strict, &req("a", &[])).unwrap_err();
        assert_eq!(r.status, 403);
    }
}
