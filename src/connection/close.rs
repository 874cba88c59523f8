//! The close state machine of one connection, and what it reports when the connection ends
//! ([`Disconnect`]).
//!
//! Four facts decide everything: whether our close frame has been queued, whether the peer's
//! close frame has arrived, whether the socket is dead, and the local reason the server ended
//! the connection for (the first one recorded wins). The rest of the crate changes them only
//! through two verbs on the connection, *close gracefully* (queue a close frame after the data)
//! and *abort* (a last close frame if one can still go, then shut the socket), plus the
//! reader's report that the peer's close frame arrived. Pure logic: no locks, sockets or time.

use syncws_protocol::CloseCode;

/// Why and how a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The close code: the one in the close frame that ended the connection (1005 if it had
    /// none), the one the server sent when it closed for its own reason, or 1006 when the
    /// connection dropped without a closing handshake.
    pub code: CloseCode,
    /// The close reason, or a description of why the connection dropped.
    pub reason: String,
    /// Whether the closing handshake completed (both close frames exchanged).
    pub clean: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct CloseState {
    sent: bool,
    received: Option<(CloseCode, String)>,
    local: Option<(CloseCode, String)>,
    dead: bool,
}

impl CloseState {
    /// Whether data may still be sent: no close frame queued, socket alive.
    pub(crate) fn is_open(&self) -> bool {
        !self.sent && !self.dead
    }

    /// Whether the socket is shut or failed.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Whether our close frame has been queued.
    pub(crate) fn close_sent(&self) -> bool {
        self.sent
    }

    /// Records why the server is ending the connection, unless a reason is already recorded.
    pub(crate) fn note_reason(&mut self, code: CloseCode, reason: &str) {
        if self.local.is_none() {
            self.local = Some((code, reason.to_string()));
        }
    }

    /// A graceful close for a local reason: `true` when the caller must queue the close frame
    /// now (nothing was sent yet and the socket is alive).
    pub(crate) fn close(&mut self, code: CloseCode, reason: &str) -> bool {
        if self.sent || self.dead {
            return false;
        }
        self.note_reason(code, reason);
        self.sent = true;
        true
    }

    /// The peer's close frame arrived: `true` when the caller must answer with its own.
    pub(crate) fn peer_closed(&mut self, code: CloseCode, reason: &str) -> bool {
        self.received = Some((code, reason.to_string()));
        if self.sent || self.dead {
            return false;
        }
        self.sent = true;
        true
    }

    /// Abort for a local reason: `true` when a last close frame is worth trying first. The
    /// state is dead afterwards.
    pub(crate) fn abort(&mut self, code: CloseCode, reason: &str) -> bool {
        self.note_reason(code, reason);
        let last_frame = !self.sent && !self.dead;
        self.sent = true;
        self.dead = true;
        last_frame
    }

    /// The socket failed: dead, with no reason of ours.
    pub(crate) fn broken(&mut self) {
        self.dead = true;
    }

    /// What to report when the connection ends; `dropped` says why the socket ended when no
    /// close frame came and no local reason was recorded.
    pub(crate) fn disconnect(&self, dropped: &str) -> Disconnect {
        match (&self.received, &self.local) {
            // We closed first and the peer answered: our reason.
            (Some(_), Some((code, reason))) if self.sent => Disconnect {
                code: *code,
                reason: reason.clone(),
                clean: true,
            },
            (Some((code, reason)), _) => Disconnect {
                code: *code,
                reason: reason.clone(),
                clean: true,
            },
            (None, Some((code, reason))) => Disconnect {
                code: *code,
                reason: reason.clone(),
                clean: false,
            },
            (None, None) => Disconnect {
                code: CloseCode::ABNORMAL,
                reason: dropped.to_string(),
                clean: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(code: u16, reason: &str, clean: bool) -> Disconnect {
        Disconnect {
            code: CloseCode(code),
            reason: reason.into(),
            clean,
        }
    }

    #[test]
    fn peer_closes_first_we_echo() {
        let mut s = CloseState::default();
        assert!(s.is_open());
        assert!(s.peer_closed(CloseCode(4000), "bye"), "we must answer");
        assert!(!s.is_open());
        assert!(!s.close(CloseCode::NORMAL, "late"), "no second close frame");
        assert_eq!(s.disconnect("eof"), d(4000, "bye", true));
    }

    #[test]
    fn we_close_first_peer_answers() {
        let mut s = CloseState::default();
        assert!(s.close(CloseCode::GOING_AWAY, "shutting down"));
        assert!(!s.close(CloseCode::NORMAL, "again"), "closing twice sends once");
        assert!(
            !s.peer_closed(CloseCode(1001), ""),
            "the peer's reply needs no answer"
        );
        assert_eq!(s.disconnect("eof"), d(1001, "shutting down", true));
    }

    #[test]
    fn we_close_peer_never_answers() {
        let mut s = CloseState::default();
        assert!(s.close(CloseCode::NORMAL, "idle timeout"));
        assert!(!s.abort(CloseCode::ABNORMAL, "closing handshake timed out"));
        assert!(s.is_dead());
        assert_eq!(s.disconnect("eof"), d(1000, "idle timeout", false));
    }

    #[test]
    fn abort_tries_one_frame_then_is_dead() {
        let mut s = CloseState::default();
        assert!(s.abort(CloseCode::POLICY_VIOLATION, "send queue overflow"));
        assert!(s.is_dead() && s.close_sent());
        assert!(!s.abort(CloseCode::POLICY_VIOLATION, "again"));
        assert!(!s.close(CloseCode::NORMAL, "x"));
        assert_eq!(s.disconnect("eof"), d(1008, "send queue overflow", false));
    }

    #[test]
    fn socket_drops_without_close() {
        let mut s = CloseState::default();
        s.broken();
        assert!(s.is_dead());
        assert!(
            !s.close(CloseCode::NORMAL, "x"),
            "nothing to send on a dead socket"
        );
        assert_eq!(
            s.disconnect("connection reset"),
            d(1006, "connection reset", false)
        );
    }

    #[test]
    fn first_reason_wins() {
        let mut s = CloseState::default();
        s.note_reason(CloseCode::PROTOCOL_ERROR, "bad frame");
        assert!(s.close(CloseCode::PROTOCOL_ERROR, "bad frame, again"));
        s.broken();
        assert_eq!(s.disconnect("eof"), d(1002, "bad frame", false));
    }

    #[test]
    fn peer_close_after_abort_reports_ours() {
        let mut s = CloseState::default();
        assert!(s.abort(CloseCode::POLICY_VIOLATION, "heartbeat timeout"));
        assert!(!s.peer_closed(CloseCode::NORMAL, ""));
        assert_eq!(s.disconnect("eof"), d(1008, "heartbeat timeout", true));
    }
}
