//! A wrapper that keeps credentials out of logs.
//!
//! AUTH data (passwords, tokens, SASL responses) travels through events and
//! configuration structs that applications like to `{:?}`-print. [`Secret`]
//! makes that safe: its `Debug` prints `Secret(<redacted>)`, never the value.
//! It has no `Display`, so a secret can only be read on purpose, through
//! [`Secret::expose`].

use std::fmt;

/// A value whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the secret value. Call it only where the value must be used.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// Returns the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new(String::from("hunter2"));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!format!("{s:#?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
