//! One module per subcommand.

pub mod bench;
pub mod bridge;
pub mod cat;
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
