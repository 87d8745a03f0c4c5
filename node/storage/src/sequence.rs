//! [`SequenceNumber`], the position of a record in the journal.

use std::fmt;

/// Position of a record in the journal: the first record is 1 and every record is exactly one
/// more than the one before it, across segments and restarts. This is the same concept as the
/// wallet library's `stablelane::SequenceNumber` (the position of an accepted transaction in the
/// node's journal); the node converts with `.get()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SequenceNumber(pub u64);

impl SequenceNumber {
    /// The sequence number of the first record of every journal.
    pub const FIRST: Self = Self(1);

    /// The raw value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next sequence number, or `None` on overflow.
    pub fn checked_next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_and_overflow() {
        assert_eq!(
            SequenceNumber::FIRST.checked_next(),
            Some(SequenceNumber(2))
        );
        assert_eq!(SequenceNumber(u64::MAX).checked_next(), None);
        assert_eq!(SequenceNumber(42).to_string(), "42");
    }
}
