//! The application's hooks into the handshake, as one cloneable set.

use std::sync::Arc;

use crate::auth::AuthHook;
use crate::http::{HandshakeHook, HttpHook};

/// The hooks a [`crate::Server`] was given (`on_handshake`, `on_http`, `on_auth`).
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) handshake: Option<Arc<HandshakeHook>>,
    pub(crate) http: Option<Arc<HttpHook>>,
    pub(crate) auth: Option<Arc<AuthHook>>,
}
