//! The sgcWebSockets quick-start as a desktop window: a server on a form, an **Active**
//! toggle, and "Message Received From Client: ..." in a log, with the handlers running on the
//! GUI thread. syncws's asynchronous mode pumped by the application does this: the window's
//! loop calls [`syncws::Dispatcher::dispatch_pending`] each frame, and the dispatcher's waker
//! asks egui for a repaint when an event arrives while the loop sleeps, so the window shows a
//! message in the frame after it arrives without polling.
//!
//! ```text
//! cargo run --release --manifest-path examples/desktop/Cargo.toml -- --active --addr 127.0.0.1:0
//! cargo run --release --manifest-path examples/desktop/Cargo.toml -- --help
//! ```

mod board;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::exit;
use std::time::{Duration, Instant};

use board::Board;
use eframe::egui;
use syncws::{Dispatcher, HeartbeatConfig, Server, ServerConfig, ServerHandle, TlsConfig, WatchdogConfig};

const HELP: &str = "\
syncws desktop: the sgcWebSockets quick-start as a window.

usage: syncws-desktop [--active] [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM] [--screenshot FILE.png]

  --active            start serving at once (prints `listening on ws://HOST:PORT` on stdout)
  --addr HOST:PORT    the address to listen on (default 127.0.0.1:9002; port 0: any free port)
  --tls-cert PEM      serve wss:// with this certificate chain (with --tls-key)
  --tls-key PEM       the certificate's private key
  --screenshot FILE   once a client's message is on screen (and the connections' RTTs, or
                      5 s later), save the window as a PNG (prints `screenshot saved to FILE`)
  --help              this text";

/// The form's fields.
#[derive(Debug)]
struct Settings {
    addr: String,
    tls: bool,
    cert: String,
    key: String,
}

/// The command line: the form's first values, and what to do at once.
#[derive(Debug)]
struct Args {
    settings: Settings,
    active: bool,
    screenshot: Option<PathBuf>,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        settings: Settings {
            addr: "127.0.0.1:9002".into(),
            tls: false,
            cert: String::new(),
            key: String::new(),
        },
        active: false,
        screenshot: None,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("active") => args.active = true,
            Long("addr") => args.settings.addr = parser.value()?.string()?,
            Long("tls-cert") => args.settings.cert = parser.value()?.string()?,
            Long("tls-key") => args.settings.key = parser.value()?.string()?,
            Long("screenshot") => args.screenshot = Some(parser.value()?.into()),
            Long("help") | Short('h') => {
                println!("{HELP}");
                exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    args.settings.tls = !args.settings.cert.is_empty();
    Ok(args)
}

/// A started server and the dispatcher the window pumps.
struct Running {
    handle: ServerHandle,
    dispatcher: Dispatcher,
    url: String,
}

/// Where the screenshot stands.
#[derive(Debug, PartialEq, Eq)]
enum Shot {
    /// Waiting for a client's message on screen (since when it has been there).
    Waiting(Option<Instant>),
    /// Asked for; the callback saves it.
    Requested,
}

/// How long the screenshot waits, after the message is on screen, for every connection's
/// first RTT (the heartbeat pings every second).
const RTT_WAIT: Duration = Duration::from_secs(5);

struct App {
    board: Board,
    settings: Settings,
    server: Option<Running>,
    /// The send box.
    outgoing: String,
    screenshot: Option<(PathBuf, Shot)>,
}

impl App {
    /// Starts the server with the form's settings; the waker asks egui for a repaint.
    fn start(&mut self, ctx: &egui::Context) -> Result<(), String> {
        let addr: SocketAddr = self
            .settings
            .addr
            .trim()
            .parse()
            .map_err(|e| format!("address: {e}"))?;
        let config = ServerConfig::new(addr)
            .heartbeat(HeartbeatConfig::new(
                Duration::from_secs(1),
                Duration::from_secs(30),
            ))
            .watchdog(WatchdogConfig::new(Duration::from_secs(2), 0))
            .close_timeout(Duration::from_secs(1));
        let mut server = Server::new(config);
        if self.settings.tls {
            server = server.tls(TlsConfig::new(
                self.settings.cert.trim(),
                self.settings.key.trim(),
            ));
        }
        let (handle, dispatcher) = server.start_manual().map_err(|e| e.to_string())?;
        let repaint = ctx.clone();
        dispatcher.set_waker(move || repaint.request_repaint());
        let scheme = if self.settings.tls { "wss" } else { "ws" };
        let url = format!("{scheme}://{}", handle.local_addr());
        println!("listening on {url}");
        let _ = std::io::stdout().flush();
        self.board.note(format!("Server active: {url}"));
        self.server = Some(Running {
            handle,
            dispatcher,
            url,
        });
        Ok(())
    }

    /// Stops the server (close 1001 to every client) and shows the last events.
    fn stop(&mut self) {
        if let Some(run) = self.server.take() {
            run.handle.stop();
            run.dispatcher.dispatch_pending(&mut self.board);
            self.board.clear_connections();
            self.board.note("Server stopped".into());
        }
    }

    fn set_active(&mut self, ctx: &egui::Context, active: bool) {
        if !active {
            return self.stop();
        }
        if let Err(e) = self.start(ctx) {
            self.board.note(format!("Could not start: {e}"));
        }
    }

    /// The top bar: Active, Restart, the address and TLS fields.
    fn controls(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        ui.horizontal(|ui| {
            let mut active = self.server.is_some();
            if ui.checkbox(&mut active, "Active").changed() {
                self.set_active(&ctx, active);
            }
            if ui
                .add_enabled(self.server.is_some(), egui::Button::new("Restart"))
                .clicked()
            {
                self.stop();
                self.set_active(&ctx, true);
            }
            let editable = self.server.is_none();
            ui.label("Address");
            ui.add_enabled(
                editable,
                egui::TextEdit::singleline(&mut self.settings.addr).desired_width(160.0),
            );
            ui.add_enabled(editable, egui::Checkbox::new(&mut self.settings.tls, "TLS"));
            match &self.server {
                Some(run) => ui.label(format!("listening on {}", run.url)),
                None => ui.weak("stopped"),
            };
        });
        if self.settings.tls {
            ui.horizontal(|ui| {
                let editable = self.server.is_none();
                ui.label("Certificate");
                ui.add_enabled(editable, egui::TextEdit::singleline(&mut self.settings.cert));
                ui.label("Key");
                ui.add_enabled(editable, egui::TextEdit::singleline(&mut self.settings.key));
            });
        }
    }

    /// The connection list (id, peer, path, RTT; click to select) and the server events.
    fn connections(&mut self, ui: &mut egui::Ui) {
        ui.heading(format!("Connections ({})", self.board.rows.len()));
        egui::Grid::new("connections").striped(true).show(ui, |ui| {
            for title in ["id", "peer", "path", "RTT"] {
                ui.strong(title);
            }
            ui.end_row();
            for row in &self.board.rows {
                let id = row.conn.id();
                let selected = self.board.selected == Some(id);
                if ui.selectable_label(selected, row.short_id()).clicked() {
                    self.board.selected = Some(id);
                }
                ui.label(row.conn.peer_addr().to_string());
                ui.label(row.conn.path());
                ui.label(row.rtt_text());
                ui.end_row();
            }
        });
        ui.separator();
        ui.heading("Server events");
        if self.board.server_events.is_empty() {
            ui.weak("none");
        }
        for line in &self.board.server_events {
            ui.label(line);
        }
    }

    /// The send box: to the selected connection (WriteData) or to everyone.
    fn send_box(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut self.outgoing).hint_text("text to send"));
            let can = self.server.is_some() && !self.outgoing.is_empty();
            if ui
                .add_enabled(can, egui::Button::new("Send to selected"))
                .clicked()
            {
                self.board.send_selected(&self.outgoing);
            }
            if ui.add_enabled(can, egui::Button::new("Broadcast")).clicked() {
                if let Some(run) = &self.server {
                    let n = run.handle.broadcast_text(&self.outgoing, None);
                    self.board
                        .note(format!("Broadcast to {n} client(s): {}", self.outgoing));
                }
            }
        });
    }

    /// Once a client's message has been drawn (and the connections' RTTs, or after
    /// [`RTT_WAIT`]), asks for a screenshot of the next frame.
    fn maybe_screenshot(&mut self, ctx: &egui::Context) {
        let Some((path, shot)) = &mut self.screenshot else {
            return;
        };
        let Shot::Waiting(since) = shot else {
            return;
        };
        if since.is_none()
            && self
                .board
                .log
                .iter()
                .any(|l| l.starts_with("Message Received From Client: "))
        {
            *since = Some(Instant::now());
        }
        let Some(t) = *since else {
            return;
        };
        let rtts = self.board.rows.iter().all(|r| r.conn.rtt().is_some());
        if !rtts && t.elapsed() < RTT_WAIT {
            ctx.request_repaint_after(Duration::from_millis(200));
            return;
        }
        *shot = Shot::Requested;
        let path = path.clone();
        ctx.request_screenshot(move |image| match save_png(&path, &image) {
            Ok(()) => {
                println!("screenshot saved to {}", path.display());
                let _ = std::io::stdout().flush();
            }
            Err(e) => eprintln!("screenshot: {}: {e}", path.display()),
        });
    }
}

/// Writes an egui image as an RGBA PNG.
fn save_png(path: &std::path::Path, image: &egui::ColorImage) -> Result<(), String> {
    let [w, h] = image.size;
    let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    let (w, h) = (
        u32::try_from(w).map_err(|e| e.to_string())?,
        u32::try_from(h).map_err(|e| e.to_string())?,
    );
    image::save_buffer(path, &rgba, w, h, image::ColorType::Rgba8).map_err(|e| e.to_string())
}

impl eframe::App for App {
    /// Each frame starts by handling the events that arrived: the handlers (the board) run
    /// here, on the GUI thread.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let Some(run) = &self.server {
            run.dispatcher.dispatch_pending(&mut self.board);
        }
        if !self.board.rows.is_empty() {
            // Only for the RTT column, which changes without an event.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Panel::top("controls").show(ui, |ui| self.controls(ui));
        egui::Panel::bottom("send").show(ui, |ui| self.send_box(ui));
        egui::Panel::right("connections")
            .default_size(380.0)
            .show(ui, |ui| self.connections(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            ui.heading("Messages");
            egui::ScrollArea::vertical().stick_to_bottom(true).show(ui, |ui| {
                for line in &self.board.log {
                    ui.monospace(line);
                }
            });
        });
        self.maybe_screenshot(ui.ctx());
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.stop();
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("syncws-desktop: {e}\n\n{HELP}");
        exit(2);
    });
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("syncws: the sgcWebSockets quick-start")
            .with_inner_size([960.0, 560.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "syncws-desktop",
        options,
        Box::new(move |cc| {
            let mut app = App {
                board: Board {
                    echo: true,
                    ..Board::default()
                },
                settings: args.settings,
                server: None,
                outgoing: String::new(),
                screenshot: args.screenshot.map(|p| (p, Shot::Waiting(None))),
            };
            if args.active {
                app.set_active(&cc.egui_ctx, true);
            }
            Ok(Box::new(app))
        }),
    );
    if let Err(e) = result {
        eprintln!("syncws-desktop: {e}");
        exit(1);
    }
}
