//! `duet`: every command that stays on this device; the network commands are handed to
//! `duet-net` beside it (see the crate's documentation).

fn main() -> std::process::ExitCode {
    duet_cli::cli::run(duet_cli::cli::hand_over)
}
