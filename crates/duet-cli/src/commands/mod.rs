//! One module per command.

pub mod edit;
pub mod export;
pub mod init;
pub mod list;
pub mod show;
pub mod status;
pub mod write;
