//! Asynchronous mode pumped from the application's own loop — the shape of a GUI or game
//! loop that must stay in charge of its thread. The handler lives on this thread (it is not
//! `Send`: it holds an `Rc`), and events are handled between "frames" of other work.
//!
//! ```text
//! cargo run --example pump -- [--addr HOST:PORT] [--frames N]
//! cargo run --example pump -- --help     # every flag, with its unit and default
//! ```

#[path = "support/flags.rs"]
mod flags;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::exit;
use std::rc::Rc;
use std::time::Duration;

use syncws::{Connection, Disconnect, Handler, ServerConfig};

/// Counts what happened; `Rc<RefCell<..>>` shows the handler need not be `Send`.
struct Game {
    score: Rc<RefCell<u64>>,
}

impl Handler for Game {
    fn on_connect(&mut self, conn: &Connection) {
        let _ = conn.send_text("welcome to the game loop");
    }
    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        *self.score.borrow_mut() += 1;
        let _ = conn.send_text(&format!("frame-loop got: {text}"));
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        println!("{} left ({} {})", conn.id(), info.code, info.reason);
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("syncws=info")).init();
    let defaults = ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 9002)));
    let cli = flags::Cli::<flags::Args<u64>>::new(
        "pump",
        "pump: asynchronous mode pumped from the application's own loop (about 60 frames a second).",
    )
    .heading("pump")
    .flag(
        "frames",
        "N",
        "",
        "stop after N frames (about 60 a second); without it, run until killed",
        |a, v| flags::number(v).map(|n| a.own = n),
    )
    .server_flags(&defaults);
    let args = cli.parse(flags::Args::new(defaults, u64::MAX));
    let frames = args.own;
    let (server, tls) = args.server.build().unwrap_or_else(|why| cli.fail(&why));
    let (handle, dispatcher) = match server.start_manual() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("pump: {e}");
            exit(1);
        }
    };
    let scheme = if tls { "wss" } else { "ws" };
    println!("listening on {scheme}://{}", handle.local_addr());
    let score = Rc::new(RefCell::new(0));
    let mut game = Game { score: score.clone() };
    // The application's loop: ~60 frames a second, events handled in between.
    let mut frame = 0u64;
    while frame < frames {
        frame += 1;
        let handled = dispatcher.dispatch_pending(&mut game);
        if handled > 0 {
            println!(
                "frame {frame}: handled {handled} event(s), score {}",
                score.borrow()
            );
        }
        std::thread::sleep(Duration::from_millis(16)); // "render"
    }
    handle.stop();
    // Disconnects delivered during stop are still waiting: handle them too.
    dispatcher.dispatch_pending(&mut game);
}
