//! What a duet device says about itself on the local network, and how a paired device knows it.
//!
//! A device announces itself by mDNS under duet's own service name with a *label* in place of
//! its id: eight random bytes (the nonce, new each time the device announces on a new set of
//! addresses) and the first twelve bytes of a keyed hash of that nonce under a key derived from
//! the device's id. Whoever holds the id (the couple's devices, which pinned it) recognises the
//! label; anyone else on the network sees twenty random-looking bytes that change with every
//! network the device joins, so it cannot tell two duet devices apart, nor follow one device
//! from one network to the next. Nothing else is announced but the addresses and port
//! (`docs/security.md`, "On the local network").

use data_encoding::BASE32_NOPAD;

/// The mDNS service: records are named `<label>._duet1._udp.local`.
pub const SERVICE: &str = "duet1";
/// Bytes of the nonce in a label.
pub const NONCE_LEN: usize = 8;
/// Bytes of the keyed hash in a label.
pub const TAG_LEN: usize = 12;
/// Characters of a label: base32 (lower case, no padding) of nonce and tag.
pub const LABEL_LEN: usize = (NONCE_LEN + TAG_LEN) * 8 / 5;

const CONTEXT: &str = "duet 2026-11 lan label v1";

fn tag(device: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> [u8; TAG_LEN] {
    let key = blake3::derive_key(CONTEXT, device);
    let hash = blake3::keyed_hash(&key, nonce);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&hash.as_bytes()[..TAG_LEN]);
    out
}

/// The label `device` announces itself under with this nonce.
pub fn label(device: &[u8; 32], nonce: [u8; NONCE_LEN]) -> String {
    let mut raw = [0u8; NONCE_LEN + TAG_LEN];
    raw[..NONCE_LEN].copy_from_slice(&nonce);
    raw[NONCE_LEN..].copy_from_slice(&tag(device, &nonce));
    BASE32_NOPAD.encode(&raw).to_ascii_lowercase()
}

/// Whether `label` (as heard on the network: anyone's words) is `device` announcing itself.
/// Anything that is not a well-formed label is simply not a match.
pub fn is_label_of(label: &str, device: &[u8; 32]) -> bool {
    if label.len() != LABEL_LEN {
        return false;
    }
    let Ok(raw) = BASE32_NOPAD.decode(label.to_ascii_uppercase().as_bytes()) else {
        return false;
    };
    let Ok(raw) = <[u8; NONCE_LEN + TAG_LEN]>::try_from(raw.as_slice()) else {
        return false;
    };
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&raw[..NONCE_LEN]);
    // Not secret, so no need for a constant-time comparison: the tag is public on the network.
    raw[NONCE_LEN..] == tag(device, &nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_names_its_device_and_no_other() {
        let alex = [1u8; 32];
        let sam = [2u8; 32];
        let label = label(&alex, [9; NONCE_LEN]);
        assert_eq!(label.len(), LABEL_LEN);
        assert!(is_label_of(&label, &alex));
        assert!(is_label_of(&label.to_ascii_uppercase(), &alex));
        assert!(!is_label_of(&label, &sam));
    }

    #[test]
    fn a_new_nonce_makes_a_label_unrelated_to_the_last() {
        let alex = [0x5c; 32];
        let a = label(&alex, [1; NONCE_LEN]);
        let b = label(&alex, [2; NONCE_LEN]);
        assert_ne!(a, b);
        // Nothing in the label is the id, nor stays the same across nonces.
        let shared = a.chars().zip(b.chars()).filter(|(x, y)| x == y).count();
        assert!(shared < LABEL_LEN / 2, "{a} {b}");
        assert!(!a.contains(&BASE32_NOPAD.encode(&alex[..5]).to_ascii_lowercase()));
    }

    #[test]
    fn what_a_stranger_announces_never_matches() {
        let alex = [1u8; 32];
        let mut forged = label(&alex, [3; NONCE_LEN]).into_bytes();
        forged[LABEL_LEN - 1] = if forged[LABEL_LEN - 1] == b'a' {
            b'b'
        } else {
            b'a'
        };
        let forged = String::from_utf8(forged).unwrap();
        for text in [
            "",
            "x",
            forged.as_str(),
            "7rutqynuzu65fcdgoerbt4uoh3p62wuto2mp56x3uvhitqzssxga",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            "ééééééééééééééé",
        ] {
            assert!(!is_label_of(text, &alex), "{text}");
        }
    }
}
