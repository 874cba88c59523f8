//! syncws
