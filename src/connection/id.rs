//! [`ConnectionId`]: a connection's name, stable for its life.

use std::fmt;
use std::str::FromStr;

/// A connection's id: a random (v4) UUID, stable for the connection's life. Its string form is
/// the usual hyphenated one and parses back with [`FromStr`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(uuid::Uuid);

impl ConnectionId {
    pub(crate) fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({self})")
    }
}

impl FromStr for ConnectionId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}
