//! `duet`: a local-first journal for two partners.

mod cli;
mod commands;
mod dates;
mod editor;
mod net;
mod notify;
mod output;
mod safe;
mod sessions;

fn main() -> std::process::ExitCode {
    cli::run()
}
