//! One module per command.

pub mod checkin;
pub mod device;
pub mod doctor;
pub mod edit;
pub mod export;
pub mod init;
pub mod list;
pub mod pair;
pub mod question;
pub mod rituals;
pub mod serve;
pub mod show;
pub mod status;
pub mod sync;
pub mod unpair;
pub mod write;
