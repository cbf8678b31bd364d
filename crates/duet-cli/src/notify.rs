//! Desktop notifications for `duet serve --notify`: a gentle tap when the partner's thanks,
//! check-in or answer arrives. They never carry an item's text (a lock screen is not
//! private, and a hidden answer must stay hidden), and with no notification service they do
//! nothing at all.

use duet_core::Kind;

/// The line to show for what just arrived, or `None` when nothing deserves a tap.
pub fn message(
    partner: &str,
    new_items: &std::collections::BTreeMap<Kind, usize>,
) -> Option<String> {
    let count = |kind: Kind| new_items.get(&kind).copied().unwrap_or(0);
    let mut parts = Vec::new();
    match count(Kind::Thanks) {
        0 => {}
        1 => parts.push(format!("{partner} thanked you")),
        n => parts.push(format!("{partner} thanked you {n} times")),
    }
    if count(Kind::Checkin) > 0 {
        parts.push(format!("{partner} checked in"));
    }
    if count(Kind::Answer) > 0 {
        parts.push(format!(
            "{partner} answered a question (`duet question` shows it once you have too)"
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Show `body` as a desktop notification. Errors (no D-Bus, no notification daemon) are
/// only logged: `--notify` on a headless machine is not a mistake.
pub async fn show(body: &str) {
    let shown = notify_rust::Notification::new()
        .appname("duet")
        .summary("duet")
        .body(body)
        .show_async()
        .await;
    if let Err(err) = shown {
        tracing::debug!(%err, "no desktop notification service");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rituals_tap_and_no_text_travels() {
        let mut arrived = std::collections::BTreeMap::new();
        arrived.insert(Kind::Entry, 3);
        assert_eq!(message("Sam", &arrived), None);
        arrived.insert(Kind::Thanks, 2);
        arrived.insert(Kind::Answer, 1);
        let text = message("Sam", &arrived).unwrap();
        assert!(
            text.starts_with("Sam thanked you 2 times; Sam answered a question"),
            "{text}"
        );
    }
}
