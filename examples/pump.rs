//! Asynchronous mode pumped from the application's own loop — the shape of a GUI or game
//! loop that must stay in charge of its thread. The handler lives on this thread (it is not
//! `Send`: it holds an `Rc`), and events are handled between "frames" of other work.
//!
//! ```text
//! cargo run --example pump -- [--addr HOST:PORT] [--frames N]
//! ```

#[path = "support/logger.rs"]
mod logger;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use syncws::{Connection, Disconnect, Handler, Server, ServerConfig};

/// Counts what happened; `Rc<RefCell<..>>` shows the handler need not be `Send`.
struct Game {
    score: Rc<RefCell<u64>>,
}

impl Handler for Game {
    fn on_connect(&mut self, conn: &Connection) {
        let _ = conn.send_text("welcome to the game loop");
    }
    fn on_text(&mut self, conn: &Connection, text: String) {
        *self.score.borrow_mut() += 1;
        let _ = conn.send_text(&format!("frame-loop got: {text}"));
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        println!("{} left ({} {})", conn.id(), info.code, info.reason);
    }
}

fn main() {
    logger::init();
    let mut addr = "127.0.0.1:9002".to_string();
    let mut frames: u64 = u64::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            "--frames" => {
                frames = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--frames needs a number")
            }
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    let addr: std::net::SocketAddr = addr.parse().expect("bad --addr");
    let (handle, dispatcher) = Server::new(ServerConfig::new(addr))
        .start_manual()
        .expect("listen");
    println!("listening on ws://{}", handle.local_addr());
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
