use clap::Args;
use serde_json::json;

use crate::cli::Context;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Your name, as your partner will see it
    #[arg(long)]
    pub name: String,
    /// What you call this device, in your list of devices ("laptop", "phone")
    #[arg(long, default_value = "first device")]
    pub label: String,
    /// Restore your person key from your recovery phrase (read from stdin, or asked for):
    /// your journal comes back from your partner's device at the next sync
    #[arg(long)]
    pub recover: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum RecoveryCommand {
    /// Print your recovery phrase (24 words), with what it can do
    Show,
}

/// The person key as 24 words (BIP-39, English list): the key's 32 bytes are the entropy.
fn phrase_of(seed: &[u8; 32]) -> String {
    bip39::Mnemonic::from_entropy(seed)
        .expect("32 bytes are valid BIP-39 entropy")
        .to_string()
}

/// Reads a recovery phrase back into the person key.
fn seed_of(text: &str) -> anyhow::Result<[u8; 32]> {
    let words = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let mnemonic =
        bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &words).map_err(|e| {
            anyhow::anyhow!(
                "this is not a recovery phrase duet made ({e}); check every word and their order"
            )
        })?;
    let entropy = mnemonic.to_entropy();
    entropy.as_slice().try_into().map_err(|_| {
        anyhow::anyhow!(
            "this phrase has {} words; a duet recovery phrase has 24",
            mnemonic.word_count()
        )
    })
}

/// The phrase from stdin: asked for on a terminal, read whole from a pipe.
fn read_phrase() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Read, Write};
    let mut text = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("Your 24 words, in order, on one line: ");
        let _ = std::io::stderr().flush();
        std::io::stdin().lock().read_line(&mut text)?;
    } else {
        std::io::stdin()
            .lock()
            .take(4096)
            .read_to_string(&mut text)?;
    }
    Ok(text)
}

pub fn run_recovery(ctx: &Context, out: &mut Out, cmd: RecoveryCommand) -> anyhow::Result<()> {
    let RecoveryCommand::Show = cmd;
    let store = ctx.store()?;
    let (person, _) = store.home().identity("first device", ctx.now_ms())?;
    let phrase = phrase_of(&person.seed());
    if out.json {
        return Ok(out.json_value(&json!({ "phrase": phrase }))?);
    }
    out.line(&phrase)?;
    out.note(
        "These 24 words are your person key. With them, `duet init --recover` on a new device \
         makes it yours again and brings your journal back from your partner's device. Anyone \
         who has them can do the same: add a device as you, read your journal, revoke your \
         devices. Write them on paper and keep them where only you can reach; do not store them \
         in a photo, a chat or a cloud note.",
    );
    Ok(())
}

pub fn run(ctx: &Context, out: &mut Out, args: InitArgs) -> anyhow::Result<()> {
    if args.recover {
        if ctx.home.is_initialized() {
            anyhow::bail!(
                "{} already holds a journal; recover into a new, empty home (pass --home DIR)",
                ctx.home.root().display()
            );
        }
        let seed = seed_of(&read_phrase()?)?;
        let config = ctx
            .home
            .init_recovered(&args.name, args.label.trim(), ctx.now_ms(), seed)?;
        if out.json {
            return Ok(out.json_value(&json!({
                "name": config.name,
                "home": ctx.home.root(),
                "journal": config.journal.to_string(),
                "recovering": true,
            }))?);
        }
        out.line(&format!(
            "Welcome back, {}. This device holds your person key again.",
            config.name
        ))?;
        out.note(
            "Your journal comes back from your partner's device: pair with them once more \
             (`duet pair invite` here, `duet pair join` there; they stay paired with you), then \
             run `duet sync`. Once it is back, revoke the device you lost with `duet device revoke`.",
        );
        return Ok(());
    }
    let config = ctx.home.init(&args.name, args.label.trim(), ctx.now_ms())?;
    if out.json {
        return Ok(out.json_value(&json!({
            "name": config.name,
            "home": ctx.home.root(),
            "journal": config.journal.to_string(),
        }))?);
    }
    out.line(&format!(
        "Welcome, {}. Your journal lives in {}.",
        config.name,
        ctx.home.root().display()
    ))?;
    out.note(
        "Write a first line with `duet write \"...\"`, \
         then pair with your partner: `duet pair invite`.",
    );
    Ok(())
}
