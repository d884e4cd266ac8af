//! Identifiers the runtime hands out, and validation of identifiers it receives.

use std::fmt::Write as _;
use std::io::Read;

/// A fresh sandbox id, `sbx-` plus 12 random hex digits. The id doubles as the sandbox hostname, so it
/// stays short and DNS-safe.
pub fn new_sandbox_id() -> String {
    format!("sbx-{}", random_hex(6))
}

/// A fresh snapshot id, `snap-` plus 12 random hex digits.
pub fn new_snapshot_id() -> String {
    format!("snap-{}", random_hex(6))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // /dev/urandom never blocks after boot; falling back to time-based bits keeps ids unique enough for a
    // single host if it is somehow unreadable.
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> (i * 8)) as u8 ^ (std::process::id() >> (i % 4)) as u8;
        }
    }
    let mut s = String::with_capacity(bytes * 2);
    for b in buf {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// True for ids made only of `[A-Za-z0-9._-]`, 1..=64 long, not starting with a dot: safe as a path
/// component and as a cgroup name.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_ids_are_unique_and_safe() {
        let a = new_sandbox_id();
        let b = new_sandbox_id();
        assert_ne!(a, b);
        assert!(is_safe_id(&a));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn unsafe_ids_are_refused() {
        for bad in ["", "..", ".hidden", "a/b", "a b", "x\0", &"x".repeat(65)] {
            assert!(!is_safe_id(bad), "{bad:?} should be refused");
        }
        assert!(is_safe_id("sbx-0123abcd"));
    }
}
