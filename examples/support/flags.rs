//! The examples' command line, on `lexopt`: ONE table of flags, each with its value name, its
//! default and a one-line description, both parses the arguments and prints `--help`.
//!
//! [`Cli::server_flags`] adds the flags shared by every example: the [`ServerConfig`] settings
//! (named after its fields and setters), authentication and TLS. Units: sizes in bytes, times
//! in seconds (fractions allowed); 0 turns a setting off where its description says so. The
//! defaults shown are read from the configuration the example starts from, that is the
//! library's `ServerConfig::default()` (with the example's own listening address).
//!
//! An unknown flag, a missing or bad value, or flags that do not fit together print one line
//! on stderr and exit with status 2; `--help` prints the table on stdout and exits with 0.

use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::process::exit;
use std::str::FromStr;
use std::time::Duration;

use lexopt::Arg;
use syncws::{AuthConfig, ClusterConfig, DeflateConfig, OverflowPolicy, Server, ServerConfig};

/// Applies a flag's value (`""` for a switch) to the arguments being built.
type Set<T> = fn(&mut T, &str) -> Result<(), String>;

/// One row of the table: a flag, or the heading of the flags after it.
enum Row<T> {
    Heading(&'static str),
    Flag {
        /// The long name, without `--`.
        name: &'static str,
        /// How the value is shown (`BYTES`, `SECS`, ...); `None` for a switch.
        value: Option<&'static str>,
        /// The default as shown in `--help`; empty when there is none to show.
        default: String,
        help: &'static str,
        set: Set<T>,
    },
}

/// A program's flag table; see the module documentation.
pub(crate) struct Cli<T> {
    program: &'static str,
    about: &'static str,
    rows: Vec<Row<T>>,
}

impl<T> Cli<T> {
    /// An empty table for `program`, described by `about` in `--help`.
    pub(crate) fn new(program: &'static str, about: &'static str) -> Self {
        Self {
            program,
            about,
            rows: Vec::new(),
        }
    }

    /// Starts a group of flags under `title` in `--help`.
    pub(crate) fn heading(mut self, title: &'static str) -> Self {
        self.rows.push(Row::Heading(title));
        self
    }

    /// A flag that takes a value, shown as `value`; `default` (may be empty) goes in `--help`.
    pub(crate) fn flag(
        mut self,
        name: &'static str,
        value: &'static str,
        default: impl Display,
        help: &'static str,
        set: Set<T>,
    ) -> Self {
        self.rows.push(Row::Flag {
            name,
            value: Some(value),
            default: default.to_string(),
            help,
            set,
        });
        self
    }

    /// A flag without a value; `set` is called with `""`.
    pub(crate) fn switch(mut self, name: &'static str, help: &'static str, set: Set<T>) -> Self {
        self.rows.push(Row::Flag {
            name,
            value: None,
            default: String::new(),
            help,
            set,
        });
        self
    }

    /// Parses the process's arguments into `args`. On `--help` prints the help and exits 0;
    /// on an error prints it and exits 2.
    pub(crate) fn parse(&self, mut args: T) -> T {
        match self.parse_from(lexopt::Parser::from_env(), &mut args) {
            Ok(true) => {
                print!("{}", self.help());
                exit(0)
            }
            Ok(false) => args,
            Err(why) => self.fail(&why),
        }
    }

    /// Parses `parser`'s arguments into `args`; `Ok(true)` when `--help` was asked for.
    fn parse_from(&self, mut parser: lexopt::Parser, args: &mut T) -> Result<bool, String> {
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            let name = match arg {
                Arg::Short('h') | Arg::Long("help") => return Ok(true),
                Arg::Long(name) => name.to_string(),
                other => return Err(other.unexpected().to_string()),
            };
            let found = self.rows.iter().find_map(|row| match row {
                Row::Flag {
                    name: n, value, set, ..
                } if *n == name => Some((value.is_some(), *set)),
                _ => None,
            });
            let Some((takes_value, set)) = found else {
                return Err(format!("unknown flag --{name}"));
            };
            let value = if takes_value {
                parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .into_string()
                    .map_err(|v| format!("--{name}: the value {v:?} is not UTF-8"))?
            } else {
                String::new()
            };
            set(args, &value).map_err(|why| format!("--{name}: {why}"))?;
        }
        Ok(false)
    }

    /// Prints `why` and a pointer to `--help` on stderr, and exits with status 2.
    pub(crate) fn fail(&self, why: &str) -> ! {
        eprintln!("{}: {why}", self.program);
        eprintln!("Try `{} --help` for the flags.", self.program);
        exit(2)
    }

    /// The `--help` text, generated from the table.
    pub(crate) fn help(&self) -> String {
        const WIDTH: usize = 100;
        let left = |name: &str, value: Option<&str>| match value {
            Some(v) => format!("--{name} {v}"),
            None => format!("--{name}"),
        };
        let column = self
            .rows
            .iter()
            .filter_map(|row| match row {
                Row::Flag { name, value, .. } => Some(left(name, *value).len()),
                Row::Heading(_) => None,
            })
            .max()
            .unwrap_or(0)
            .clamp(10, 28)
            + 4;
        let mut out = format!(
            "{}\n\nusage: {} [FLAG]...\n\nSizes are in bytes, times in seconds (fractions allowed).\n",
            self.about, self.program
        );
        for row in &self.rows {
            match row {
                Row::Heading(title) => out.push_str(&format!("\n{title}:\n")),
                Row::Flag {
                    name,
                    value,
                    default,
                    help,
                    ..
                } => {
                    // The words of the description; the default is one word, never split.
                    let mut words: Vec<String> = help.split(' ').map(str::to_string).collect();
                    if !default.is_empty() {
                        words.push(format!("[default: {default}]"));
                    }
                    let flag = left(name, *value);
                    let mut line = format!("  {flag:<w$}", w = column - 2);
                    if flag.len() + 2 > column - 2 {
                        out.push_str(line.trim_end());
                        out.push('\n');
                        line = " ".repeat(column);
                    }
                    // Word-wrap the description at WIDTH, continuing under its column.
                    for word in &words {
                        if line.len() + 1 + word.len() > WIDTH && line.len() > column {
                            out.push_str(&line);
                            out.push('\n');
                            line = " ".repeat(column);
                        }
                        if line.len() > column {
                            line.push(' ');
                        }
                        line.push_str(word);
                    }
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
        out.push_str(&format!("\n  {:<w$}this help\n", "-h, --help", w = column - 2));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The shared server flags

/// What an example's command line holds: the server settings and the example's own (`X`).
pub(crate) struct Args<X> {
    pub(crate) server: ServerArgs,
    pub(crate) own: X,
}

impl<X> Args<X> {
    /// Starts from `config` (its values are the defaults shown in `--help`) and `own`.
    pub(crate) fn new(config: ServerConfig, own: X) -> Self {
        Self {
            server: ServerArgs {
                config,
                heartbeat_timeout_given: false,
                watchdog_attempts_given: false,
                auth: None,
                users: Vec::new(),
                users_file: None,
                allow_non_auth: false,
                auth_limits: AuthLimits::default(),
                deflate: (false, false, DeflateConfig::default()),
                cluster: (None, false, ClusterConfig::new("")),
                #[cfg(feature = "tls")]
                tls: (None, None, None),
            },
            own,
        }
    }
}

/// `--auth-max-failures`, `--auth-lockout`, `--max-tokens-per-user`: applied to the
/// `AuthConfig` that `--auth` makes.
#[derive(Default)]
struct AuthLimits {
    max_failures: Option<u32>,
    lockout: Option<Duration>,
    tokens_per_user: Option<usize>,
}

impl AuthLimits {
    fn given(&self) -> bool {
        self.max_failures.is_some() || self.lockout.is_some() || self.tokens_per_user.is_some()
    }

    fn apply(&self, mut auth: AuthConfig) -> AuthConfig {
        if let Some(n) = self.max_failures {
            auth = auth.max_failures(n);
        }
        if let Some(t) = self.lockout {
            auth = auth.lockout(t);
        }
        if let Some(n) = self.tokens_per_user {
            auth = auth.max_sessions_per_user(n);
        }
        auth
    }
}

/// The server part of the command line; [`ServerArgs::build`] turns it into a [`Server`].
pub(crate) struct ServerArgs {
    config: ServerConfig,
    heartbeat_timeout_given: bool,
    watchdog_attempts_given: bool,
    auth: Option<AuthConfig>,
    /// `--user` names, each with the `--password` that followed it.
    users: Vec<(String, Option<String>)>,
    users_file: Option<String>,
    allow_non_auth: bool,
    auth_limits: AuthLimits,
    /// `--deflate`, whether a knob was given, and the knobs.
    deflate: (bool, bool, DeflateConfig),
    /// `--cluster URL`, whether a cluster knob was given, and the knobs.
    cluster: (Option<String>, bool, ClusterConfig),
    /// `--tls-cert`, `--tls-key`, `--tls-chain`.
    #[cfg(feature = "tls")]
    tls: (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>),
}

impl ServerArgs {
    /// The server the flags describe (configuration checked, TLS set), and whether it serves
    /// TLS. `Err` says which flags do not fit together.
    pub(crate) fn build(self) -> Result<(Server, bool), String> {
        let mut config = self.config;
        match self.deflate {
            (true, _, d) => config.deflate = Some(d),
            (false, true, _) => return Err("the --deflate-... flags need --deflate".into()),
            (false, false, _) => {}
        }
        match self.cluster {
            (Some(url), _, mut c) => {
                c.url = url;
                config.cluster = Some(c);
            }
            (None, true, _) => return Err("the --node and --cluster-... flags need --cluster".into()),
            (None, false, _) => {}
        }
        if self.heartbeat_timeout_given && !config.heartbeat.enabled {
            return Err("--heartbeat-timeout needs a --heartbeat-interval above 0".into());
        }
        if self.watchdog_attempts_given && !config.watchdog.enabled {
            return Err("--watchdog-attempts needs a --watchdog-interval above 0".into());
        }
        match self.auth {
            Some(mut auth) => {
                for (user, password) in self.users {
                    let Some(password) = password else {
                        return Err(format!("--user {user} needs a --password after it"));
                    };
                    auth = auth.user(user, password);
                }
                if let Some(file) = self.users_file {
                    let text = std::fs::read_to_string(&file).map_err(|e| format!("--users {file}: {e}"))?;
                    auth = auth
                        .users_from_lines(&text)
                        .map_err(|e| format!("--users {file}: {e}"))?;
                }
                config.auth = self.auth_limits.apply(auth.allow_non_auth(self.allow_non_auth));
            }
            None if !self.users.is_empty()
                || self.users_file.is_some()
                || self.allow_non_auth
                || self.auth_limits.given() =>
            {
                return Err("--user, --users, --allow-non-auth and the auth limits need --auth".into());
            }
            None => {}
        }
        config.validate().map_err(|e| e.to_string())?;
        let server = Server::new(config);
        #[cfg(feature = "tls")]
        match self.tls {
            (Some(cert), Some(key), chain) => {
                let mut tls = syncws::TlsConfig::new(cert, key);
                if let Some(chain) = chain {
                    tls = tls.chain(chain);
                }
                return Ok((server.tls(tls), true));
            }
            (None, None, None) => {}
            _ => return Err("--tls-cert and --tls-key go together (and --tls-chain needs both)".into()),
        }
        Ok((server, false))
    }
}

impl<X> Cli<Args<X>> {
    /// Adds the server, authentication and TLS flags, with the defaults of `d` (the
    /// configuration the arguments start from).
    pub(crate) fn server_flags(self, d: &ServerConfig) -> Self {
        let addr = d.bind.first().map_or_else(String::new, SocketAddr::to_string);
        self.heading("server (ServerConfig)")
            .flag(
                "addr",
                "HOST:PORT",
                addr,
                "address to listen on (port 0: any free port)",
                |a, v| {
                    let addr = v.to_socket_addrs().map_err(|e| format!("{v:?}: {e}"))?.next();
                    a.server.config.bind = vec![addr.ok_or_else(|| format!("{v:?}: no address"))?];
                    Ok(())
                },
            )
            .flag(
                "max-message-size",
                "BYTES",
                bytes(d.limits.max_message_size),
                "largest message, all its frames together; larger closes the connection with 1009",
                |a, v| number(v).map(|n| a.server.config.limits.max_message_size = n),
            )
            .flag(
                "max-frame-size",
                "BYTES",
                bytes(d.limits.max_frame_size),
                "largest frame; larger closes the connection with 1009",
                |a, v| number(v).map(|n| a.server.config.limits.max_frame_size = n),
            )
            .flag(
                "read-chunk",
                "BYTES",
                bytes(d.limits.read_chunk as u64),
                "first size of a connection's read buffer (it grows while reads fill it)",
                |a, v| number(v).map(|n| a.server.config.limits.read_chunk = n),
            )
            .flag(
                "max-send-queue",
                "BYTES",
                bytes(d.max_send_queue as u64),
                "bytes that may wait to go to one client that reads slowly",
                |a, v| number(v).map(|n| a.server.config.max_send_queue = n),
            )
            .flag(
                "overflow-policy",
                "close|drop-message",
                match d.overflow_policy {
                    OverflowPolicy::Close => "close",
                    OverflowPolicy::DropMessage => "drop-message",
                    _ => "(other)",
                },
                "when that queue is full: close the connection (1008) or drop the message",
                |a, v| {
                    a.server.config.overflow_policy = match v {
                        "close" => OverflowPolicy::Close,
                        "drop-message" => OverflowPolicy::DropMessage,
                        _ => return Err(format!("{v:?} is neither close nor drop-message")),
                    };
                    Ok(())
                },
            )
            .flag(
                "outbound-budget",
                "BYTES",
                bytes(d.outbound_budget as u64),
                "bytes that may wait in all outbound queues together; past it, close 1013",
                |a, v| number(v).map(|n| a.server.config.outbound_budget = n),
            )
            .flag(
                "inbound-budget",
                "BYTES",
                bytes(d.inbound_budget as u64),
                "bytes held for reading by all connections together; past it, close 1009",
                |a, v| number(v).map(|n| a.server.config.inbound_budget = n),
            )
            .flag(
                "write-timeout",
                "SECS",
                secs_shown(d.write_timeout),
                "how long to wait for a client that does not read before dropping it",
                |a, v| secs(v).map(|n| a.server.config.write_timeout = n),
            )
            .flag(
                "handshake-timeout",
                "SECS",
                secs_shown(d.handshake_timeout),
                "time a client has for its TLS handshake and upgrade request",
                |a, v| secs(v).map(|n| a.server.config.handshake_timeout = n),
            )
            .flag(
                "idle-timeout",
                "SECS",
                d.idle_timeout.map_or_else(|| "0 (off)".into(), secs_shown),
                "close a connection that sends nothing for this long; 0 = off",
                |a, v| {
                    let t = secs(v)?;
                    a.server.config.idle_timeout = (!t.is_zero()).then_some(t);
                    Ok(())
                },
            )
            .flag(
                "message-timeout",
                "SECS",
                d.message_timeout.map_or_else(|| "0 (off)".into(), secs_shown),
                "time a client has to finish a message once it began; then close 1008; 0 = off",
                |a, v| {
                    let t = secs(v)?;
                    a.server.config.message_timeout = (!t.is_zero()).then_some(t);
                    Ok(())
                },
            )
            .flag(
                "close-timeout",
                "SECS",
                secs_shown(d.close_timeout),
                "how long a closing handshake (and the last queued data) may take",
                |a, v| secs(v).map(|n| a.server.config.close_timeout = n),
            )
            .flag(
                "max-connections",
                "N",
                d.max_connections,
                "most simultaneous connections; more get HTTP 503",
                |a, v| number(v).map(|n| a.server.config.max_connections = n),
            )
            .flag(
                "max-subscriptions",
                "N",
                d.max_subscriptions,
                "most topics one connection may subscribe to; more are refused",
                |a, v| number(v).map(|n| a.server.config.max_subscriptions = n),
            )
            .flag(
                "max-topic-len",
                "BYTES",
                d.max_topic_len,
                "longest topic name; longer ones are refused",
                |a, v| number(v).map(|n| a.server.config.max_topic_len = n),
            )
            .flag(
                "max-handshakes",
                "N",
                d.max_handshakes,
                "most connections in their TLS handshake or upgrade request at once; more get HTTP 503",
                |a, v| number(v).map(|n| a.server.config.max_handshakes = n),
            )
            .flag(
                "backlog",
                "N",
                d.backlog,
                "listen backlog: connections the kernel holds until they are accepted",
                |a, v| number(v).map(|n| a.server.config.backlog = n),
            )
            .flag(
                "max-connections-per-ip",
                "N",
                d.max_connections_per_ip,
                "most connections from one client address (IPv6: one prefix); more get HTTP 429",
                |a, v| number(v).map(|n| a.server.config.max_connections_per_ip = n),
            )
            .flag(
                "ipv6-prefix",
                "BITS",
                d.ipv6_prefix,
                "IPv6 clients count per network of this prefix length",
                |a, v| number(v).map(|n| a.server.config.ipv6_prefix = n),
            )
            .flag(
                "new-connections-per-ip",
                "N",
                if d.new_connections_per_ip == 0 {
                    "0 (off)".to_string()
                } else {
                    d.new_connections_per_ip.to_string()
                },
                "most new connections per second from one client address; 0 = off",
                |a, v| number(v).map(|n| a.server.config.new_connections_per_ip = n),
            )
            .flag(
                "allowed-origin",
                "ORIGIN",
                "the server's own host",
                "a web origin (scheme://host[:port]) whose pages may connect (repeatable; * = any)",
                |a, v| {
                    let o = &mut a.server.config.origins;
                    if v == "*" {
                        o.any = true;
                    } else {
                        o.allowed.push(v.to_string());
                    }
                    Ok(())
                },
            )
            .flag(
                "event-queue",
                "N",
                d.event_queue,
                "events that may wait for the dispatch thread (async mode)",
                |a, v| number(v).map(|n| a.server.config.event_queue = n),
            )
            .flag(
                "event-queue-bytes",
                "BYTES",
                bytes(d.event_queue_bytes as u64),
                "message bytes that may wait for the dispatch thread (async mode)",
                |a, v| number(v).map(|n| a.server.config.event_queue_bytes = n),
            )
            .flag(
                "dispatch-spin",
                "SECS",
                secs_shown(d.dispatch_spin),
                "how long the dispatch thread looks for the next event before it sleeps (async mode)",
                |a, v| secs(v).map(|n| a.server.config.dispatch_spin = n),
            )
            .flag(
                "max-handshake-bytes",
                "BYTES",
                bytes(d.max_handshake_bytes as u64),
                "largest upgrade request head; larger gets HTTP 431",
                |a, v| number(v).map(|n| a.server.config.max_handshake_bytes = n),
            )
            .flag(
                "max-headers",
                "N",
                d.max_headers,
                "most header fields in the upgrade request; more get HTTP 431",
                |a, v| number(v).map(|n| a.server.config.max_headers = n),
            )
            .flag(
                "thread-stack-size",
                "BYTES",
                bytes(d.thread_stack_size as u64),
                "stack size of each connection thread",
                |a, v| number(v).map(|n| a.server.config.thread_stack_size = n),
            )
            .flag(
                "nodelay",
                "on|off",
                if d.nodelay { "on" } else { "off" },
                "TCP_NODELAY on accepted sockets",
                |a, v| {
                    a.server.config.nodelay = match v {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("{v:?} is neither on nor off")),
                    };
                    Ok(())
                },
            )
            .heading("heartbeat and watchdog")
            .flag(
                "heartbeat-interval",
                "SECS",
                if d.heartbeat.enabled {
                    secs_shown(d.heartbeat.interval)
                } else {
                    "0 (off)".into()
                },
                "time between pings to every client; 0 = off",
                |a, v| {
                    let t = secs(v)?;
                    let hb = &mut a.server.config.heartbeat;
                    hb.enabled = !t.is_zero();
                    if hb.enabled {
                        hb.interval = t;
                    }
                    Ok(())
                },
            )
            .flag(
                "heartbeat-timeout",
                "SECS",
                secs_shown(d.heartbeat.timeout),
                "close a client silent for this long after a ping; 0 = never",
                |a, v| {
                    a.server.config.heartbeat.timeout = secs(v)?;
                    a.server.heartbeat_timeout_given = true;
                    Ok(())
                },
            )
            .flag(
                "watchdog-interval",
                "SECS",
                if d.watchdog.enabled {
                    secs_shown(d.watchdog.interval)
                } else {
                    "0 (off)".into()
                },
                "restart a failed listener after this long; 0 = off",
                |a, v| {
                    let t = secs(v)?;
                    let wd = &mut a.server.config.watchdog;
                    wd.enabled = !t.is_zero();
                    if wd.enabled {
                        wd.interval = t;
                    }
                    Ok(())
                },
            )
            .flag(
                "watchdog-attempts",
                "N",
                d.watchdog.attempts,
                "most restart attempts after one failure; 0 = unlimited",
                |a, v| {
                    a.server.config.watchdog.attempts = number(v)?;
                    a.server.watchdog_attempts_given = true;
                    Ok(())
                },
            )
            .heading("authentication")
            .flag(
                "auth",
                "METHODS",
                if d.auth.enabled { "on" } else { "off" },
                "require authentication by these methods, comma-separated: basic, url, session",
                |a, v| {
                    let (mut basic, mut url, mut session) = (false, false, false);
                    for m in v.split(',') {
                        match m.trim() {
                            "basic" => basic = true,
                            "url" => url = true,
                            "session" => session = true,
                            other => return Err(format!("unknown method {other:?} (basic, url, session)")),
                        }
                    }
                    a.server.auth = Some(AuthConfig::new().methods(basic, url, session));
                    Ok(())
                },
            )
            .flag(
                "user",
                "NAME",
                "",
                "a user (repeatable), each followed by its --password",
                |a, v| {
                    a.server.users.push((v.to_string(), None));
                    Ok(())
                },
            )
            .flag(
                "password",
                "PASS",
                "",
                "the password of the --user before it",
                |a, v| {
                    match a.server.users.last_mut() {
                        Some((_, p @ None)) => *p = Some(v.to_string()),
                        _ => return Err("must follow a --user (one password each)".into()),
                    }
                    Ok(())
                },
            )
            .flag(
                "users",
                "FILE",
                "",
                "more users from FILE: `name=password` lines",
                |a, v| {
                    a.server.users_file = Some(v.to_string());
                    Ok(())
                },
            )
            .switch(
                "allow-non-auth",
                "let clients without credentials in too",
                |a, _| {
                    a.server.allow_non_auth = true;
                    Ok(())
                },
            )
            .flag(
                "auth-max-failures",
                "N",
                d.auth.max_failures,
                "failed logins from one address (or for one user) that lock it out; 0 = off",
                |a, v| number(v).map(|n| a.server.auth_limits.max_failures = Some(n)),
            )
            .flag(
                "auth-lockout",
                "SECS",
                secs_shown(d.auth.lockout),
                "how long a locked-out address or user gets 429",
                |a, v| secs(v).map(|t| a.server.auth_limits.lockout = Some(t)),
            )
            .flag(
                "max-tokens-per-user",
                "N",
                d.auth.max_sessions_per_user,
                "live session tokens one user may hold; more get 429",
                |a, v| number(v).map(|n| a.server.auth_limits.tokens_per_user = Some(n)),
            )
            .heading(if cfg!(feature = "tls") {
                "TLS (wss://)"
            } else {
                "TLS (wss://; not in this build: built without the `tls` feature)"
            })
            .flag(
                "tls-cert",
                "FILE",
                "",
                "PEM certificate (then its chain); with --tls-key, serve TLS",
                |_a, _v| {
                    #[cfg(feature = "tls")]
                    {
                        _a.server.tls.0 = Some(_v.into());
                        Ok(())
                    }
                    #[cfg(not(feature = "tls"))]
                    no_tls()
                },
            )
            .flag(
                "tls-key",
                "FILE",
                "",
                "PEM private key (PKCS#8, PKCS#1 or SEC1)",
                |_a, _v| {
                    #[cfg(feature = "tls")]
                    {
                        _a.server.tls.1 = Some(_v.into());
                        Ok(())
                    }
                    #[cfg(not(feature = "tls"))]
                    no_tls()
                },
            )
            .flag(
                "tls-chain",
                "FILE",
                "",
                "PEM intermediate certificates to send after the certificate",
                |_a, _v| {
                    #[cfg(feature = "tls")]
                    {
                        _a.server.tls.2 = Some(_v.into());
                        Ok(())
                    }
                    #[cfg(not(feature = "tls"))]
                    no_tls()
                },
            )
            .deflate_flags()
            .cluster_flags()
    }

    /// Clustering over Redis (`ClusterConfig`).
    fn cluster_flags(self) -> Self {
        let d = ClusterConfig::new("");
        self.heading("cluster over Redis (ClusterConfig)")
            .flag(
                "cluster",
                "URL",
                "",
                "join the cluster on this Redis (redis://[:PASSWORD@]HOST:PORT, rediss:// for TLS)",
                |a, v| {
                    a.server.cluster.0 = Some(v.to_string());
                    Ok(())
                },
            )
            .flag(
                "node",
                "NAME",
                "random",
                "this node's name, unique in the cluster",
                |a, v| {
                    a.server.cluster.1 = true;
                    a.server.cluster.2.node = v.to_string();
                    Ok(())
                },
            )
            .flag(
                "cluster-queue",
                "N",
                d.queue,
                "cross-node messages waiting for Redis; more are dropped",
                |a, v| {
                    a.server.cluster.1 = true;
                    number(v).map(|n| a.server.cluster.2.queue = n)
                },
            )
            .flag(
                "cluster-prefix",
                "TEXT",
                &d.prefix,
                "prefix of the Redis channels and keys",
                |a, v| {
                    a.server.cluster.1 = true;
                    a.server.cluster.2.prefix = v.to_string();
                    Ok(())
                },
            )
            .flag(
                "presence-refresh",
                "SECS",
                secs_shown(d.presence_refresh),
                "how often presence is re-published and read",
                |a, v| {
                    a.server.cluster.1 = true;
                    secs(v).map(|t| a.server.cluster.2.presence_refresh = t)
                },
            )
            .flag(
                "presence-ttl",
                "SECS",
                secs_shown(d.presence_ttl),
                "how long presence lives without a refresh (a crashed node's ids expire)",
                |a, v| {
                    a.server.cluster.1 = true;
                    secs(v).map(|t| a.server.cluster.2.presence_ttl = t)
                },
            )
    }

    /// permessage-deflate: the switch and its knobs (`DeflateConfig`).
    fn deflate_flags(self) -> Self {
        let d = DeflateConfig::default();
        self.heading("permessage-deflate (DeflateConfig)")
            .switch(
                "deflate",
                "accept permessage-deflate when a client offers it (default: off)",
                |a, _| {
                    a.server.deflate.0 = true;
                    Ok(())
                },
            )
            .flag(
                "deflate-level",
                "0-9",
                d.level,
                "zlib compression level",
                |a, v| knob(a, v, |d, n| d.level(n)),
            )
            .flag(
                "deflate-threshold",
                "BYTES",
                d.threshold,
                "messages shorter than this are sent uncompressed",
                |a, v| knob(a, v, |d, n| d.threshold(n)),
            )
            .flag(
                "deflate-server-window-bits",
                "9-15",
                d.server_max_window_bits,
                "largest window the server compresses with",
                |a, v| knob(a, v, |d, n| d.server_max_window_bits(n)),
            )
            .flag(
                "deflate-client-window-bits",
                "9-15",
                d.client_max_window_bits,
                "largest window asked of clients (each connection's inflater holds one)",
                |a, v| knob(a, v, |d, n| d.client_max_window_bits(n)),
            )
            .flag(
                "deflate-server-context",
                "on|off",
                if d.server_no_context_takeover { "off" } else { "on" },
                "keep the window from message to message when sending (a compressor per connection; off: broadcasts compressed once)",
                |a, v| knob(a, v, |d, on: OnOff| d.server_no_context_takeover(!on.0)),
            )
            .flag(
                "deflate-client-context",
                "on|off",
                if d.client_no_context_takeover { "off" } else { "on" },
                "let clients keep their window from message to message (off: asks them not to)",
                |a, v| knob(a, v, |d, on: OnOff| d.client_no_context_takeover(!on.0)),
            )
    }
}

/// `on` or `off`.
struct OnOff(bool);

impl FromStr for OnOff {
    type Err = String;
    fn from_str(v: &str) -> Result<Self, String> {
        match v {
            "on" => Ok(Self(true)),
            "off" => Ok(Self(false)),
            _ => Err(format!("{v:?} is neither on nor off")),
        }
    }
}

/// Applies one permessage-deflate knob.
fn knob<X, N: FromStr>(
    a: &mut Args<X>,
    v: &str,
    set: impl FnOnce(DeflateConfig, N) -> DeflateConfig,
) -> Result<(), String> {
    let n = v
        .parse::<N>()
        .map_err(|_| format!("{v:?} is not a valid value"))?;
    a.server.deflate.1 = true;
    a.server.deflate.2 = set(a.server.deflate.2, n);
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn no_tls() -> Result<(), String> {
    Err("TLS is not in this build (built without the `tls` feature)".into())
}

// ---------------------------------------------------------------------------------------------
// Values

/// A whole number (a count or a size in bytes).
pub(crate) fn number<N: FromStr>(v: &str) -> Result<N, String>
where
    N::Err: Display,
{
    v.parse()
        .map_err(|e| format!("{v:?} is not a whole number in range: {e}"))
}

/// A time in seconds, fractions allowed.
pub(crate) fn secs(v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{v:?} is not a number of seconds"))?;
    if s < 0.0 {
        return Err(format!("{v:?}: seconds cannot be negative"));
    }
    Duration::try_from_secs_f64(s).map_err(|_| format!("{v:?} is not a usable number of seconds"))
}

/// `d` as `--help` shows it: seconds, with a fraction only when there is one.
fn secs_shown(d: Duration) -> String {
    d.as_secs_f64().to_string()
}

/// `n` bytes as `--help` shows them: the number, and KiB/MiB/GiB when it is a whole number of
/// them.
fn bytes(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{n} ({} {unit})", n >> shift);
        }
    }
    n.to_string()
}
