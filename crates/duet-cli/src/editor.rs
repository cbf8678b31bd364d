//! Writing text in the user's editor.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;

use anyhow::{Context as _, bail};

fn editor_command() -> Option<String> {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|v| !v.trim().is_empty())
}

/// Open the editor on `initial` and return what was saved. The draft lives
/// in the home (owner-only permissions) and is removed afterwards.
pub fn edit(home: &duet_store::Home, initial: &str) -> anyhow::Result<String> {
    let Some(editor) = editor_command() else {
        bail!("no text given and no editor set; pass the text, `-` to read stdin, or set $EDITOR");
    };
    let dir = home.root().join("tmp");
    duet_store::fsutil::create_private_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let r: [u8; 6] = duet_store::fsutil::secret_bytes();
    let path = dir.join(format!(
        "draft-{}.md",
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(initial.as_bytes())?;
        drop(file);
        // Run through the shell so EDITOR="code --wait" works.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("duet-editor")
            .arg(&path)
            .status()
            .with_context(|| format!("could not start the editor `{editor}`"))?;
        if !status.success() {
            bail!("the editor `{editor}` exited with {status}; nothing was saved");
        }
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    })();
    let _ = fs::remove_file(&path);
    result
}

/// The text of a template after editing: lines that start with `#` (the template's guidance)
/// are left out. An untouched template leaves nothing, which is refused as empty.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::strip_comments;

    #[test]
    fn guidance_lines_are_left_out() {
        assert_eq!(
            strip_comments("Thank you\n# what did they do?\n\n#\n"),
            "Thank you\n"
        );
        assert_eq!(strip_comments("# only guidance\n#\n").trim(), "");
        assert_eq!(strip_comments("  # indented stays"), "  # indented stays");
    }
}
