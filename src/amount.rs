//! Amounts in a token's base units.
//!
//! Every amount in the protocol is an integer number of base units (`u128`, checked
//! arithmetic, never floats), written in JSON as a decimal string so that no client loses
//! precision. Human amounts such as `"12.50"` exist only at the CLI edge and are converted
//! with the token's decimals by [`Amount::from_human`] and [`Amount::to_human`].

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest number of decimals a token may have.
pub const MAX_DECIMALS: u8 = 36;

/// An amount in base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub u128);

/// Why a string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Empty string.
    #[error("amount is empty")]
    Empty,
    /// Not a plain non-negative decimal integer.
    #[error("amount must be a non-negative decimal integer string in base units")]
    Invalid,
    /// Larger than `u128::MAX` base units.
    #[error("amount overflows 128 bits")]
    Overflow,
    /// A human amount with more fractional digits than the token has decimals.
    #[error("amount has more than {decimals} decimal places")]
    TooPrecise {
        /// The token's decimals.
        decimals: u8,
    },
    /// A negative human amount.
    #[error("amount is negative")]
    Negative,
    /// The token's decimals are out of range.
    #[error("token decimals {0} out of range")]
    BadDecimals(u8),
}

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// The raw number of base units.
    pub const fn base_units(self) -> u128 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self - other`, or `None` if it would go negative.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses a human amount (`"12.5"`) of a token with `decimals` decimals into base units.
    pub fn from_human(text: &str, decimals: u8) -> Result<Self, AmountError> {
        if decimals > MAX_DECIMALS {
            return Err(AmountError::BadDecimals(decimals));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(AmountError::Invalid);
        }
        let value = Decimal::from_str_exact(text).map_err(|e| match e {
            rust_decimal::Error::ExceedsMaximumPossibleValue
            | rust_decimal::Error::LessThanMinimumPossibleValue => AmountError::Overflow,
            _ => AmountError::Invalid,
        })?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        let value = value.normalize();
        if value.scale() > u32::from(decimals) {
            return Err(AmountError::TooPrecise { decimals });
        }
        // value = mantissa / 10^scale, so base units = mantissa * 10^(decimals - scale).
        let mantissa = u128::try_from(value.mantissa()).map_err(|_| AmountError::Negative)?;
        let shift = u32::from(decimals) - value.scale();
        10u128
            .checked_pow(shift)
            .and_then(|factor| mantissa.checked_mul(factor))
            .map(Self)
            .ok_or(AmountError::Overflow)
    }

    /// Formats the amount for humans with `decimals` decimals, without trailing zeros
    /// (`12500000` with 6 decimals is `"12.5"`).
    pub fn to_human(self, decimals: u8) -> String {
        let decimals = u32::from(decimals.min(MAX_DECIMALS));
        let Some(factor) = 10u128.checked_pow(decimals) else {
            return self.0.to_string();
        };
        let whole = self.0 / factor;
        let fraction = self.0 % factor;
        if fraction == 0 {
            return whole.to_string();
        }
        let digits = format!("{fraction:0width$}", width = decimals as usize);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses base units from a plain decimal integer string (`"1250000"`): no sign, no
    /// fraction, no exponent, no leading zeros.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
            return Err(AmountError::Invalid);
        }
        text.parse::<u128>()
            .map(Self)
            .map_err(|_| AmountError::Overflow)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_unit_strings_are_strict() {
        assert_eq!("0".parse(), Ok(Amount(0)));
        assert_eq!("1250000".parse(), Ok(Amount(1_250_000)));
        assert_eq!(
            u128::MAX.to_string().parse::<Amount>(),
            Ok(Amount(u128::MAX))
        );
        assert_eq!(
            "340282366920938463463374607431768211456".parse::<Amount>(),
            Err(AmountError::Overflow)
        );
        for bad in ["-1", "+1", "1.0", "1e6", "01", " 1", "0x10", "１"] {
            assert_eq!(bad.parse::<Amount>(), Err(AmountError::Invalid), "{bad}");
        }
        assert_eq!("".parse::<Amount>(), Err(AmountError::Empty));
    }

    #[test]
    fn json_is_a_decimal_string() {
        assert_eq!(
            serde_json::to_string(&Amount(u128::MAX)).unwrap(),
            format!("\"{}\"", u128::MAX)
        );
        assert_eq!(
            serde_json::from_str::<Amount>("\"42\"").unwrap(),
            Amount(42)
        );
        assert!(serde_json::from_str::<Amount>("42").is_err());
    }

    #[test]
    fn human_amounts_convert_with_decimals() {
        assert_eq!(Amount::from_human("12.5", 6), Ok(Amount(12_500_000)));
        assert_eq!(Amount::from_human("12.50", 6), Ok(Amount(12_500_000)));
        assert_eq!(
            Amount::from_human("1.25", 18),
            Ok(Amount(1_250_000_000_000_000_000))
        );
        assert_eq!(Amount::from_human("0.000001", 6), Ok(Amount(1)));
        assert_eq!(Amount::from_human("7", 0), Ok(Amount(7)));
        assert_eq!(
            Amount::from_human("0.0000001", 6),
            Err(AmountError::TooPrecise { decimals: 6 })
        );
        assert_eq!(Amount::from_human("-1", 6), Err(AmountError::Negative));
        assert_eq!(Amount::from_human("1e3", 6), Err(AmountError::Invalid));
        assert_eq!(Amount::from_human("", 6), Err(AmountError::Empty));
        assert_eq!(
            Amount::from_human("79228162514264337593543950335", 36),
            Err(AmountError::Overflow)
        );
        assert_eq!(Amount(12_500_000).to_human(6), "12.5");
        assert_eq!(Amount(1).to_human(6), "0.000001");
        assert_eq!(Amount(5_000_000).to_human(6), "5");
        assert_eq!(Amount(u128::MAX).to_human(0), u128::MAX.to_string());
    }

    #[test]
    fn human_round_trip() {
        for (units, decimals) in [(1u128, 6u8), (123_456_789, 6), (10u128.pow(24) + 7, 18)] {
            let text = Amount(units).to_human(decimals);
            assert_eq!(Amount::from_human(&text, decimals), Ok(Amount(units)));
        }
    }
}
