//! What the window shows, and how events change it: the [`Board`] is the server's
//! [`Handler`]. It is pumped on the GUI thread (asynchronous mode pumped by the application),
//! so the handlers change the UI state directly: no locks, no channels of our own.

use std::collections::VecDeque;
use std::time::Duration;

use syncws::{Connection, ConnectionId, Disconnect, Error, Handler, ServerEvent};

/// Most lines kept in the message log (the oldest go first).
pub const MAX_LOG: usize = 500;

/// One row of the connection list.
#[derive(Debug)]
pub struct Row {
    /// The connection (kept to read its heartbeat RTT, and to send to it).
    pub conn: Connection,
}

impl Row {
    /// The connection's id, short enough for a table (the first 8 hex digits).
    pub fn short_id(&self) -> String {
        self.conn.id().to_string().chars().take(8).collect()
    }

    /// The round-trip time measured by the heartbeat, or "–" before the first pong.
    pub fn rtt_text(&self) -> String {
        rtt_text(self.conn.rtt())
    }
}

/// An RTT for display: milliseconds with one decimal, or "–" when not measured yet.
pub fn rtt_text(rtt: Option<Duration>) -> String {
    match rtt {
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
        None => "–".to_owned(),
    }
}

/// The window's state, changed by the server's events (as the [`Handler`]) and by the
/// buttons.
#[derive(Debug, Default)]
pub struct Board {
    /// The message log, oldest first ("Message Received From Client: ..." and the like).
    pub log: VecDeque<String>,
    /// Server-wide events (listener failures, the watchdog), oldest first.
    pub server_events: Vec<String>,
    /// The open connections, in the order they came.
    pub rows: Vec<Row>,
    /// The connection selected in the list (the target of "Send").
    pub selected: Option<ConnectionId>,
    /// Also print each log line on stdout (for scripts watching the app).
    pub echo: bool,
}

impl Board {
    /// Adds a line to the message log (and to stdout when echoing).
    pub fn note(&mut self, line: String) {
        if self.echo {
            println!("{line}");
        }
        if self.log.len() == MAX_LOG {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// The selected connection, if it is still open.
    pub fn selected_conn(&self) -> Option<&Connection> {
        let id = self.selected?;
        self.rows.iter().map(|r| &r.conn).find(|c| c.id() == id)
    }

    /// Sends `text` to the selected connection (sgcWebSockets' `WriteData`), logging what
    /// happened.
    pub fn send_selected(&mut self, text: &str) {
        let outcome = match self.selected_conn() {
            None => "Send: select a connection first".to_owned(),
            Some(c) => match c.send_text(text) {
                Ok(()) => format!("Sent to {}: {text}", short(c.id())),
                Err(e) => format!("Send to {} failed: {e}", short(c.id())),
            },
        };
        self.note(outcome);
    }

    /// Forgets everything about the previous run's connections (after a stop).
    pub fn clear_connections(&mut self) {
        self.rows.clear();
        self.selected = None;
    }
}

/// The first 8 hex digits of an id.
fn short(id: ConnectionId) -> String {
    id.to_string().chars().take(8).collect()
}

impl Handler for Board {
    fn on_connect(&mut self, conn: &Connection) {
        self.note(format!(
            "Client connected: {} from {} on {}",
            short(conn.id()),
            conn.peer_addr(),
            conn.path()
        ));
        self.rows.push(Row { conn: conn.clone() });
        if self.selected.is_none() {
            self.selected = Some(conn.id());
        }
    }

    fn on_text(&mut self, _conn: &Connection, text: syncws::TextPayload) {
        self.note(format!("Message Received From Client: {text}"));
    }

    fn on_binary(&mut self, _conn: &Connection, data: syncws::Payload) {
        self.note(format!("Binary Received From Client: {} bytes", data.len()));
    }

    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        self.note(format!(
            "Client disconnected: {} ({} {})",
            short(conn.id()),
            info.code,
            info.reason
        ));
        self.rows.retain(|r| r.conn.id() != conn.id());
        if self.selected == Some(conn.id()) {
            self.selected = self.rows.first().map(|r| r.conn.id());
        }
    }

    fn on_error(&mut self, conn: &Connection, error: Error) {
        self.note(format!("Error on {}: {error}", short(conn.id())));
    }

    fn on_server_event(&mut self, event: ServerEvent) {
        let line = match &event {
            ServerEvent::ListenerFailed { addr, error } => format!("Listener on {addr} failed: {error}"),
            ServerEvent::WatchdogAttempt { addr, attempt } => {
                format!("Watchdog: restarting {addr}, attempt {attempt}")
            }
            ServerEvent::WatchdogRestarted { addr, attempt } => {
                format!("Watchdog: {addr} is back (attempt {attempt})")
            }
            ServerEvent::WatchdogGaveUp { addr, attempts } => {
                format!("Watchdog: gave up on {addr} after {attempts} attempts")
            }
            other => format!("{other:?}"),
        };
        if self.echo {
            println!("server event: {line}");
        }
        self.server_events.push(line);
    }
}

#[cfg(test)]
mod tests {
    //! The board driven by a real server pumped from the test thread, as the window pumps
    //! it, with tungstenite clients: no window needed.

    use super::*;
    use std::net::TcpStream;
    use std::time::Instant;

    use syncws::{Dispatcher, HeartbeatConfig, Server, ServerConfig, ServerHandle};
    use tungstenite::{Message, WebSocket};

    type Client = WebSocket<TcpStream>;

    fn serve(config: ServerConfig) -> (ServerHandle, Dispatcher) {
        Server::new(config).start_manual().expect("start")
    }

    fn client(handle: &ServerHandle, path: &str) -> Client {
        let url = format!("ws://{}{path}", handle.local_addr());
        let tcp = TcpStream::connect(handle.local_addr()).expect("tcp connect");
        let (ws, _) = tungstenite::client(url, tcp).expect("websocket handshake");
        ws
    }

    /// Pumps until `cond` holds on the board (at most 10 s).
    fn pump_until(d: &Dispatcher, board: &mut Board, cond: impl Fn(&Board) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond(board) {
            assert!(Instant::now() < deadline, "timed out; log: {:?}", board.log);
            d.dispatch_timeout(board, Duration::from_millis(20));
        }
    }

    #[test]
    fn a_message_becomes_the_quick_start_line() {
        let (handle, d) = serve(ServerConfig::new(([127, 0, 0, 1], 0)));
        let mut board = Board::default();
        let mut ws = client(&handle, "/chat");
        ws.send(Message::text("hello from a test")).unwrap();
        pump_until(&d, &mut board, |b| b.log.len() == 2);
        assert!(board.log[0].starts_with("Client connected: "), "{:?}", board.log);
        assert!(board.log[0].ends_with(" on /chat"), "{:?}", board.log);
        assert_eq!(board.log[1], "Message Received From Client: hello from a test");
        assert_eq!(board.rows.len(), 1);
        assert_eq!(board.rows[0].conn.path(), "/chat");
        assert_eq!(board.selected, Some(board.rows[0].conn.id()));
        drop(ws);
        pump_until(&d, &mut board, |b| b.rows.is_empty());
        assert!(
            board.log[2].starts_with("Client disconnected: "),
            "{:?}",
            board.log
        );
        assert_eq!(board.selected, None);
        handle.stop();
    }

    #[test]
    fn send_goes_to_the_selected_connection_only() {
        let (handle, d) = serve(ServerConfig::new(([127, 0, 0, 1], 0)));
        let mut board = Board::default();
        let mut a = client(&handle, "/a");
        pump_until(&d, &mut board, |b| b.rows.len() == 1);
        let mut b = client(&handle, "/b");
        pump_until(&d, &mut board, |b| b.rows.len() == 2);
        board.selected = Some(board.rows[1].conn.id());
        board.send_selected("only for b");
        assert_eq!(b.read().unwrap(), Message::text("only for b"));
        assert!(board.log.back().unwrap().starts_with("Sent to "));
        // a gets nothing: the broadcast after it is the first thing it reads.
        handle.broadcast_text("to all", None);
        assert_eq!(a.read().unwrap(), Message::text("to all"));
        drop((a, b));
        handle.stop();
    }

    #[test]
    fn send_without_a_selection_says_so() {
        let mut board = Board::default();
        board.send_selected("nobody");
        assert_eq!(board.log.back().unwrap(), "Send: select a connection first");
    }

    #[test]
    fn the_log_keeps_the_newest_lines() {
        let mut board = Board::default();
        for i in 0..MAX_LOG + 10 {
            board.note(format!("line {i}"));
        }
        assert_eq!(board.log.len(), MAX_LOG);
        assert_eq!(board.log.front().unwrap(), "line 10");
    }

    #[test]
    fn the_heartbeat_fills_in_the_rtt() {
        let config = ServerConfig::new(([127, 0, 0, 1], 0))
            .heartbeat(HeartbeatConfig::new(Duration::from_millis(100), Duration::ZERO));
        let (handle, d) = serve(config);
        let mut board = Board::default();
        let mut ws = client(&handle, "/rtt");
        pump_until(&d, &mut board, |b| b.rows.len() == 1);
        // The client answers pings while it reads; it reads until the RTT is known.
        ws.get_mut()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while board.rows[0].conn.rtt().is_none() {
            assert!(Instant::now() < deadline, "no RTT measured");
            let _ = ws.read();
        }
        assert!(board.rows[0].rtt_text().ends_with(" ms"));
        drop(ws);
        handle.stop();
    }

    #[test]
    fn server_events_are_listed() {
        let mut board = Board::default();
        let addr = "127.0.0.1:9".parse().unwrap();
        board.on_server_event(ServerEvent::WatchdogRestarted { addr, attempt: 2 });
        assert_eq!(board.server_events, ["Watchdog: 127.0.0.1:9 is back (attempt 2)"]);
    }

    #[test]
    fn rtt_text_formats() {
        assert_eq!(rtt_text(None), "–");
        assert_eq!(rtt_text(Some(Duration::from_micros(1500))), "1.5 ms");
    }
}
