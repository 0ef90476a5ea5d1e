//! One module per subcommand.
//!
//! `bench`, `bridge`, `channel` and `registry` are Linux only, as what they drive is (memfds,
//! futexes, eventfds, handles passed over sockets): elsewhere the command has no such
//! subcommand.

#[cfg(target_os = "linux")]
pub mod bench;
#[cfg(target_os = "linux")]
pub mod bridge;
pub mod cat;
#[cfg(target_os = "linux")]
pub mod channel;
pub mod docs;
pub mod gc;
pub mod info;
pub mod limits;
pub mod ls;
pub mod mk;
#[cfg(target_os = "linux")]
pub mod registry;
pub mod rm;
pub mod write;
