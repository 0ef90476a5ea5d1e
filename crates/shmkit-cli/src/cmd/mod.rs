//! One module per subcommand.
//!
//! `bench`, `bridge` and `channel` are Linux only, as what they drive is (memfds, futexes,
//! eventfds): elsewhere the command has no such subcommand. `registry` is on both, its
//! `serve` Linux only (macOS's registry is the bootstrap server).

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
pub mod registry;
pub mod rm;
pub mod write;
