//! Paths inside a sandbox as callers give them: checked before any syscall sees them (no NUL, no other
//! control characters) and resolved lexically (`.` dropped, `..` pops, and stops at the root, as the
//! kernel does at `/`). The result is relative to the sandbox root and made only of plain names, so what
//! the kernel later resolves (openat2 RESOLVE_IN_ROOT) is exactly the path that was checked.

use std::path::{Component, Path, PathBuf};

/// Why a path or text field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is invalid: {reason}")]
pub struct PathError {
    /// What was given (`path`, `files[0].path`, `collect[2]`, `cwd`).
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// The first control character in `value` (C0, U+0000 to U+001F, or DEL), if any.
pub fn control_char(value: &str) -> Option<char> {
    value.chars().find(|c| (*c as u32) < 0x20 || *c == '\u{7f}')
}

/// Refuses NUL and other control characters: no path or name the runtime handles carries them, and
/// C strings cannot (a NUL would cut the path short).
pub fn check_text(field: &str, value: &str) -> Result<(), PathError> {
    match control_char(value) {
        None => Ok(()),
        Some(c) => Err(PathError {
            field: field.into(),
            value: value.into(),
            reason: format!(
                "it contains the control character U+{:04X}{}; paths may not contain NUL or other control characters",
                c as u32,
                if c == '\0' { " (NUL)" } else { "" }
            ),
        }),
    }
}

/// A checked path inside a sandbox, relative to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPath {
    rel: PathBuf,
}

impl SandboxPath {
    /// Checks `path` and resolves it lexically inside the root; relative paths start at the root.
    pub fn parse(field: &str, path: &str) -> Result<SandboxPath, PathError> {
        check_text(field, path)?;
        if path.is_empty() {
            return Err(PathError { field: field.into(), value: path.into(), reason: "it is empty".into() });
        }
        let mut rel = PathBuf::new();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(name) => rel.push(name),
                Component::ParentDir => {
                    rel.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Ok(SandboxPath { rel })
    }

    /// The sandbox root itself.
    pub fn root() -> SandboxPath {
        SandboxPath { rel: PathBuf::new() }
    }

    /// Relative to the root; empty for the root itself.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    pub fn is_root(&self) -> bool {
        self.rel.as_os_str().is_empty()
    }

    /// The directory holding it (the root for a top-level name; None for the root).
    pub fn parent(&self) -> Option<SandboxPath> {
        if self.is_root() {
            return None;
        }
        Some(SandboxPath { rel: self.rel.parent().map(Path::to_path_buf).unwrap_or_default() })
    }

    /// The last component (None for the root).
    pub fn name(&self) -> Option<&std::ffi::OsStr> {
        self.rel.file_name()
    }

    pub fn join(&self, name: &std::ffi::OsStr) -> SandboxPath {
        SandboxPath { rel: self.rel.join(name) }
    }

    /// As the sandbox sees it: `/a/b`.
    pub fn shown(&self) -> String {
        format!("/{}", self.rel.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dots_lexically_and_stays_at_the_root() {
        let p = |s: &str| SandboxPath::parse("path", s).unwrap().shown();
        assert_eq!(p("/a/b/c"), "/a/b/c");
        assert_eq!(p("a/./b"), "/a/b");
        assert_eq!(p("/a/../b"), "/b");
        assert_eq!(p("../../../../etc/passwd"), "/etc/passwd");
        assert_eq!(p("/"), "/");
        assert_eq!(p("/.."), "/");
        assert!(SandboxPath::parse("path", "/..").unwrap().is_root());
        assert_eq!(SandboxPath::parse("path", "/x/y").unwrap().parent().unwrap().shown(), "/x");
        assert_eq!(SandboxPath::parse("path", "/x").unwrap().parent().unwrap().shown(), "/");
    }

    #[test]
    fn nul_and_control_characters_are_refused_with_the_field() {
        for bad in ["/tmp/a\0b", "/tmp/\n", "/tmp/\u{1b}[31m", "\t", "/x\u{7f}"] {
            let e = SandboxPath::parse("files[3].path", bad).unwrap_err();
            assert_eq!(e.field, "files[3].path");
            assert!(e.to_string().contains("control character U+"), "{e}");
        }
        assert!(SandboxPath::parse("path", "/tmp/a\0b").unwrap_err().to_string().contains("U+0000 (NUL)"));
        assert!(SandboxPath::parse("path", "").is_err());
        // Other Unicode is fine.
        assert_eq!(SandboxPath::parse("path", "/tmp/é ü 日本").unwrap().shown(), "/tmp/é ü 日本");
    }
}
