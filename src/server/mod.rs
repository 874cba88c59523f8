//! The public face of a run: [`Server`] (configuration, hooks, the `start*` methods),
//! [`ServerHandle`] (a running server; stopping it) and [`Messenger`] (sending from anywhere).

mod builder;
mod handle;
mod messenger;

pub use builder::Server;
pub use handle::ServerHandle;
pub use messenger::{ConnectionInfo, Messenger};

#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ServerHandle>();
    check::<Messenger>();
    check::<crate::Connection>();
    check::<Server>();
}
