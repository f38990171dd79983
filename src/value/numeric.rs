//! `Numeric`: an exact decimal (PostgreSQL `NUMERIC`), kept as its canonical text so that no
//! digit is lost, with the binary wire codec PostgreSQL uses.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An exact decimal number, as PostgreSQL's `NUMERIC` holds it: any number of digits, plus
/// `NaN`, `Infinity` and `-Infinity`. Kept as canonical decimal text (`-12.3400`, with the
/// column's scale), so nothing is lost; convert it with [`to_i64`](Numeric::to_i64),
/// [`to_f64`](Numeric::to_f64) or parse [`as_str`](Numeric::as_str) into a decimal crate's
/// type.
///
/// ```
/// use session_pool::Numeric;
/// let n: Numeric = "12345678901234567890.000000000001".parse()?;
/// assert_eq!(n.as_str(), "12345678901234567890.000000000001");
/// assert_eq!("42".parse::<Numeric>()?.to_i64(), Some(42));
/// # Ok::<(), session_pool::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Numeric(String);

impl Numeric {
    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as an `i64`, when it is a whole number that fits (trailing fractional
    /// zeros allowed).
    pub fn to_i64(&self) -> Option<i64> {
        let (int, frac) = self.0.split_once('.').unwrap_or((&self.0, ""));
        if !frac.bytes().all(|b| b == b'0') {
            return None;
        }
        int.parse().ok()
    }

    /// The nearest `f64` (NaN and the infinities included).
    pub fn to_f64(&self) -> f64 {
        match self.0.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            s => s.parse().unwrap_or(f64::NAN),
        }
    }

    /// Sign, integer digits and fraction digits of a finite number.
    #[cfg(feature = "postgres")]
    fn parts(&self) -> Option<(bool, &str, &str)> {
        let s = self.0.as_str();
        if matches!(s, "NaN" | "Infinity" | "-Infinity") {
            return None;
        }
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        Some((neg, int, frac))
    }
}

impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Numeric {
    type Err = Error;

    /// Accepts `[+-]digits[.digits]`, `.5`, `NaN`, `Infinity` and `-Infinity`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid(format!("{s:?} is not a decimal number"));
        match s {
            "NaN" | "nan" => return Ok(Numeric("NaN".into())),
            "Infinity" | "+Infinity" | "inf" => return Ok(Numeric("Infinity".into())),
            "-Infinity" | "-inf" => return Ok(Numeric("-Infinity".into())),
            _ => {}
        }
        let (neg, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return Err(bad());
        }
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let zero = int == "0" && frac.bytes().all(|b| b == b'0');
        let sign = if neg && !zero { "-" } else { "" };
        let text = if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        };
        Ok(Numeric(text))
    }
}

impl From<i64> for Numeric {
    fn from(i: i64) -> Self {
        Numeric(i.to_string())
    }
}

#[cfg(feature = "postgres")]
const NUMERIC_POS: u16 = 0x0000;
#[cfg(feature = "postgres")]
const NUMERIC_NEG: u16 = 0x4000;
#[cfg(feature = "postgres")]
const NUMERIC_NAN: u16 = 0xC000;
#[cfg(feature = "postgres")]
const NUMERIC_PINF: u16 = 0xD000;
#[cfg(feature = "postgres")]
const NUMERIC_NINF: u16 = 0xF000;

#[cfg(feature = "postgres")]
impl Numeric {
    /// PostgreSQL's binary `NUMERIC`: digit count, weight, sign, display scale, then base
    /// 10000 digits, most significant first.
    pub(crate) fn to_pg_binary(&self) -> Vec<u8> {
        let header = |ndigits: i16, weight: i16, sign: u16, dscale: u16| {
            let mut out = Vec::with_capacity(8);
            out.extend_from_slice(&ndigits.to_be_bytes());
            out.extend_from_slice(&weight.to_be_bytes());
            out.extend_from_slice(&sign.to_be_bytes());
            out.extend_from_slice(&dscale.to_be_bytes());
            out
        };
        let Some((neg, int, frac)) = self.parts() else {
            let sign = match self.0.as_str() {
                "Infinity" => NUMERIC_PINF,
                "-Infinity" => NUMERIC_NINF,
                _ => NUMERIC_NAN,
            };
            return header(0, 0, sign, 0);
        };
        // Groups of four digits around the decimal point.
        let int_pad = (4 - int.len() % 4) % 4;
        let int_digits: String = "0".repeat(int_pad) + int;
        let frac_digits: String = frac.to_owned() + &"0".repeat((4 - frac.len() % 4) % 4);
        let group = |s: &str| s.parse::<u16>().unwrap_or(0);
        let mut groups: Vec<u16> = int_digits
            .as_bytes()
            .chunks(4)
            .chain(frac_digits.as_bytes().chunks(4))
            .map(|c| group(std::str::from_utf8(c).unwrap_or("0")))
            .collect();
        let mut weight = (int_digits.len() / 4) as i32 - 1;
        let leading = groups.iter().take_while(|&&g| g == 0).count();
        groups.drain(..leading);
        weight -= leading as i32;
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        let sign = if neg { NUMERIC_NEG } else { NUMERIC_POS };
        let mut out = header(groups.len() as i16, weight as i16, sign, frac.len() as u16);
        for g in groups {
            out.extend_from_slice(&g.to_be_bytes());
        }
        out
    }

    /// Reads PostgreSQL's binary `NUMERIC`.
    pub(crate) fn from_pg_binary(buf: &[u8]) -> std::result::Result<Self, String> {
        let word = |i: usize| -> std::result::Result<u16, String> {
            buf.get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| format!("a NUMERIC of {} bytes is cut short", buf.len()))
        };
        let ndigits = word(0)? as usize;
        let weight = word(2)? as i16 as i32;
        let sign = word(4)?;
        let dscale = word(6)? as usize;
        match sign {
            NUMERIC_NAN => return Ok(Numeric("NaN".into())),
            NUMERIC_PINF => return Ok(Numeric("Infinity".into())),
            NUMERIC_NINF => return Ok(Numeric("-Infinity".into())),
            NUMERIC_POS | NUMERIC_NEG => {}
            other => return Err(format!("unknown NUMERIC sign {other:#x}")),
        }
        let digits = (0..ndigits)
            .map(|k| word(8 + 2 * k))
            .collect::<std::result::Result<Vec<u16>, String>>()?;
        let digit = |k: i32| -> u16 {
            usize::try_from(k)
                .ok()
                .and_then(|k| digits.get(k))
                .copied()
                .unwrap_or(0)
        };
        let mut text = String::new();
        if sign == NUMERIC_NEG && ndigits > 0 {
            text.push('-');
        }
        if weight < 0 {
            text.push('0');
        } else {
            for k in 0..=weight {
                if k == 0 {
                    text += &digit(k).to_string();
                } else {
                    text += &format!("{:04}", digit(k));
                }
            }
        }
        if dscale > 0 {
            let mut frac = String::with_capacity(dscale + 4);
            let mut k = weight + 1;
            while frac.len() < dscale {
                frac += &format!("{:04}", digit(k));
                k += 1;
            }
            frac.truncate(dscale);
            text.push('.');
            text += &frac;
        }
        Ok(Numeric(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    fn round_trip(s: &str) -> String {
        let n: Numeric = s.parse().unwrap();
        Numeric::from_pg_binary(&n.to_pg_binary()).unwrap().0
    }

    #[test]
    #[cfg(feature = "postgres")]
    fn binary_round_trips_keep_every_digit() {
        for s in [
            "0",
            "1",
            "-1",
            "10000",
            "9999",
            "12345678901234567890123456789012345678901234567890",
            "0.0001",
            "0.00001",
            "-0.5",
            "123.4500",
            "100000000.000000001",
            "NaN",
            "Infinity",
            "-Infinity",
        ] {
            assert_eq!(round_trip(s), s, "{s}");
        }
        assert_eq!(round_trip("-0.000"), "0.000");
        assert_eq!(round_trip("007.10"), "7.10");
    }

    #[test]
    fn rejects_what_is_not_a_decimal() {
        for bad in ["", "-", ".", "1e5", "1.2.3", "abc", " 1"] {
            assert!(bad.parse::<Numeric>().is_err(), "{bad:?}");
        }
        assert_eq!(".5".parse::<Numeric>().unwrap().as_str(), "0.5");
        assert_eq!("12.000".parse::<Numeric>().unwrap().to_i64(), Some(12));
        assert_eq!("12.5".parse::<Numeric>().unwrap().to_i64(), None);
    }
}
