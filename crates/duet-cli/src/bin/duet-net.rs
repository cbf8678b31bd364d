//! `duet-net`: duet with its network commands (`pair`, `sync`, `serve`, `device`), which
//! `duet` hands over to it; it runs every other command as well.

fn main() -> std::process::ExitCode {
    duet_cli::cli::run(duet_cli::cli::run_network)
}
