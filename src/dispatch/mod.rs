//! Events and who handles them: the [`Event`]s, the handler traits, the [`Dispatcher`] of
//! asynchronous mode (and its waker, for loops that sleep), and the sink through which connection threads deliver events (the three
//! delivery paths: the library's dispatch thread, the application's own loop, inline).

mod dispatcher;
mod event;
mod handler;
mod sink;
mod waker;

pub use dispatcher::Dispatcher;
pub use event::{Event, ServerEvent};
pub use handler::{Handler, InlineHandler};
pub(crate) use sink::{Emitter, Sink, SinkSlot};
pub(crate) use waker::Waker;
