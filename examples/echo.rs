//! Echo server: sends every text and binary message back. The target of the Autobahn
//! conformance suite and of the load generator.
//!
//! ```text
//! cargo run --release --example echo -- [--addr HOST:PORT] [--notify async|nosync]
//!     [--max-message-size BYTES] [--tls-cert FILE --tls-key FILE [--tls-chain FILE]]
//!     [--heartbeat-interval SECS --heartbeat-timeout SECS]
//!     [--watchdog-interval SECS --watchdog-attempts N]
//!     [--auth basic,url,session] [--user NAME --password PASS]... [--users FILE]
//!     [--allow-non-auth]
//! ```
//!
//! When ready it prints exactly one line, `listening on ws://HOST:PORT` (or `wss://`).

#[path = "support/logger.rs"]
mod logger;
#[path = "support/tls_flags.rs"]
mod tls_flags;

use std::io::Write;
use std::net::SocketAddr;
use std::process::exit;
use std::time::Duration;

use syncws::{
    AuthConfig, Connection, Handler, HeartbeatConfig, InlineHandler, Server, ServerConfig, ServerEvent,
    WatchdogConfig,
};

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, conn: &Connection, text: String) {
        let _ = conn.send_text(&text);
    }
    fn on_binary(&mut self, conn: &Connection, data: Vec<u8>) {
        let _ = conn.send_binary(&data);
    }
    fn on_server_event(&mut self, event: ServerEvent) {
        eprintln!("server event: {event:?}");
    }
}

struct InlineEcho;

impl InlineHandler for InlineEcho {
    fn on_text(&self, conn: &Connection, text: &str) {
        let _ = conn.send_text(text);
    }
    fn on_binary(&self, conn: &Connection, data: &[u8]) {
        let _ = conn.send_binary(data);
    }
    fn on_server_event(&self, event: ServerEvent) {
        eprintln!("server event: {event:?}");
    }
}

fn usage(why: &str) -> ! {
    eprintln!("echo: {why}");
    eprintln!(
        "usage: echo [--addr HOST:PORT] [--notify async|nosync] [--max-message-size BYTES]\n\
         \x20           [--tls-cert FILE --tls-key FILE [--tls-chain FILE]]\n\
         \x20           [--heartbeat-interval SECS --heartbeat-timeout SECS]\n\
         \x20           [--watchdog-interval SECS --watchdog-attempts N]\n\
         \x20           [--auth basic,url,session] [--user NAME --password PASS]... [--users FILE]\n\
         \x20           [--allow-non-auth]"
    );
    exit(2)
}

fn secs(v: &str) -> Duration {
    match v.parse::<f64>() {
        Ok(s) if s >= 0.0 && s.is_finite() => Duration::from_secs_f64(s),
        _ => usage(&format!("bad number of seconds: {v}")),
    }
}

fn main() {
    logger::init();
    let mut addr: SocketAddr = "127.0.0.1:9001".parse().expect("default address");
    let mut nosync = false;
    let mut max_message: Option<u64> = None;
    let (mut cert, mut key, mut chain) = (None, None, None);
    let (mut hb_interval, mut hb_timeout) = (None, Duration::ZERO);
    let (mut wd_interval, mut wd_attempts) = (None, 0u32);
    let mut auth: Option<AuthConfig> = None;
    let mut users: Vec<(String, Option<String>)> = Vec::new();
    let mut users_file = None;
    let mut allow_non_auth = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => {
                addr = val()
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("bad --addr: {e}")))
            }
            "--notify" => {
                nosync = match val().as_str() {
                    "async" => false,
                    "nosync" => true,
                    other => usage(&format!("bad --notify {other}")),
                }
            }
            "--max-message-size" => {
                max_message = Some(val().parse().unwrap_or_else(|e| usage(&format!("bad size: {e}"))))
            }
            "--tls-cert" => cert = Some(val()),
            "--tls-key" => key = Some(val()),
            "--tls-chain" => chain = Some(val()),
            "--heartbeat-interval" => hb_interval = Some(secs(&val())),
            "--heartbeat-timeout" => hb_timeout = secs(&val()),
            "--watchdog-interval" => wd_interval = Some(secs(&val())),
            "--watchdog-attempts" => {
                wd_attempts = val()
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("bad attempts: {e}")))
            }
            "--auth" => {
                let (mut b, mut u, mut se) = (false, false, false);
                for m in val().split(',') {
                    match m.trim() {
                        "basic" => b = true,
                        "url" => u = true,
                        "session" => se = true,
                        other => usage(&format!("unknown auth method {other}")),
                    }
                }
                auth = Some(AuthConfig::new().methods(b, u, se));
            }
            "--user" => users.push((val(), None)),
            "--password" => match users.last_mut() {
                Some((_, p @ None)) => *p = Some(val()),
                _ => usage("--password must follow --user"),
            },
            "--users" => users_file = Some(val()),
            "--allow-non-auth" => allow_non_auth = true,
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let mut config = ServerConfig::new(addr);
    if let Some(m) = max_message {
        config = config.max_message_size(m).max_frame_size(m);
    }
    if let Some(i) = hb_interval {
        config = config.heartbeat(HeartbeatConfig::new(i, hb_timeout));
    }
    if let Some(i) = wd_interval {
        config = config.watchdog(WatchdogConfig::new(i, wd_attempts));
    }
    if let Some(mut a) = auth {
        for (u, p) in users {
            let Some(p) = p else {
                usage(&format!("--user {u} needs a --password"))
            };
            a = a.user(u, p);
        }
        if let Some(f) = users_file {
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| usage(&format!("cannot read {f}: {e}")));
            a = a
                .users_from_lines(&text)
                .unwrap_or_else(|e| usage(&format!("{f}: {e}")));
        }
        config = config.auth(a.allow_non_auth(allow_non_auth));
    } else if !users.is_empty() || users_file.is_some() || allow_non_auth {
        usage("--user, --users and --allow-non-auth need --auth");
    }
    #[allow(unused_mut)]
    let mut server = Server::new(config);
    let scheme = match tls_flags::tls_config(cert, key, chain) {
        #[cfg(feature = "tls")]
        Ok(Some(tls)) => {
            server = server.tls(tls);
            "wss"
        }
        #[cfg(not(feature = "tls"))]
        Ok(Some(never)) => match never {},
        Ok(None) => "ws",
        Err(why) => usage(&why),
    };
    let started = if nosync {
        server.start_inline(InlineEcho)
    } else {
        server.start(Echo)
    };
    let handle = match started {
        Ok(h) => h,
        Err(e) => {
            eprintln!("echo: {e}");
            exit(1);
        }
    };
    println!("listening on {scheme}://{}", handle.local_addr());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
