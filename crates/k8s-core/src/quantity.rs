//! `resource.Quantity`: parse, compare, add and print CPU/memory amounts (`100m`, `1Gi`, `1e3`, `0.5`).
//!
//! Stored as an `i128` count of nano-units, which covers every amount Kubernetes objects carry
//! (up to ~1.7e20 Ei) exactly; upstream likewise rounds anything finer than `1n` up. The original
//! suffix family (binary, decimal, exponent) is kept so that printing gives the canonical form
//! kube-apiserver would (`1.5` → `1500m`, `1536Mi` stays `1536Mi`, `1024` with `Ki` → `1Ki`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

const NANO: i128 = 1_000_000_000;

/// Which suffix family a quantity prints with (`resource.Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `Ki`, `Mi`, … (`BinarySI`).
    BinarySi,
    /// `n`, `u`, `m`, ``, `k`, `M`, … (`DecimalSI`).
    DecimalSi,
    /// `e3`, `E-6` (`DecimalExponent`).
    DecimalExponent,
}

/// Why a string is not a quantity, with upstream's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
}

/// A Kubernetes resource quantity. Equality and ordering compare amounts, not spelling.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Division rounding away from zero (upstream rounds sub-nano precision "up").
fn div_away(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d != 0 { q + n.signum() } else { q }
}

impl Quantity {
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// Parses the string form (`resource.ParseQuantity`).
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        let mut i = 0;
        let neg = match b[0] {
            b'-' => {
                i = 1;
                true
            }
            b'+' => {
                i = 1;
                false
            }
            _ => false,
        };
        let num_start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let num = &s[num_start..i];
        let suffix = &s[i..];
        if num.is_empty() || !suffix_chars_ok(suffix) {
            return Err(QuantityError::FormatWrong);
        }
        let (int_part, frac_part) = match num.split_once('.') {
            Some((a, f)) => {
                if f.contains('.') {
                    return Err(QuantityError::Numeric);
                }
                (a, f)
            }
            None => (num, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(QuantityError::Numeric);
        }
        let (binary_pow, exp10, format) = parse_suffix(suffix)?;
        // Trailing zeros of the fraction carry no value; dropping them keeps big mantissas in range.
        let frac_part = frac_part.trim_end_matches('0');
        let int_part = int_part.trim_start_matches('0');
        let digits = format!("{int_part}{frac_part}");
        if digits.len() > 36 {
            return Err(QuantityError::Numeric);
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Numeric)?
        };
        if neg {
            mantissa = -mantissa;
        }
        let overflow = || QuantityError::Numeric;
        let scaled = mantissa
            .checked_mul(1i128 << (10 * binary_pow))
            .ok_or_else(overflow)?;
        let e = exp10 + 9 - frac_part.len() as i32;
        let nanos = if e >= 0 {
            let m = 10i128.checked_pow(e as u32).ok_or_else(overflow)?;
            scaled.checked_mul(m).ok_or_else(overflow)?
        } else if -e > 38 {
            // Far below one nano: rounds away from zero to ±1n unless it is zero.
            scaled.signum()
        } else {
            div_away(scaled, 10i128.pow((-e) as u32))
        };
        Ok(Quantity { nanos, format })
    }

    /// A whole-unit amount (`resource.NewQuantity`).
    pub fn from_value(v: i64, format: Format) -> Self {
        Quantity {
            nanos: v as i128 * NANO,
            format,
        }
    }
    /// A milli-unit amount (`resource.NewMilliQuantity`).
    pub fn from_milli(v: i64, format: Format) -> Self {
        Quantity {
            nanos: v as i128 * 1_000_000,
            format,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
    /// The exact amount in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    fn scaled(&self, per: i128) -> i64 {
        div_away(self.nanos, per).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
    /// Whole units rounded up (`Value()`); bytes for memory.
    #[doc(alias = "Value")]
    pub fn value(&self) -> i64 {
        self.scaled(NANO)
    }
    /// Milli-units rounded up (`MilliValue()`); millicores for CPU.
    #[doc(alias = "MilliValue")]
    pub fn milli_value(&self) -> i64 {
        self.scaled(1_000_000)
    }

    /// `q.Add(y)`; keeps this quantity's format, saturating at the `i128` bounds.
    pub fn add(&mut self, other: &Quantity) {
        self.nanos = self.nanos.saturating_add(other.nanos);
    }
    /// `q.Sub(y)`.
    pub fn sub(&mut self, other: &Quantity) {
        self.nanos = self.nanos.saturating_sub(other.nanos);
    }
    pub fn neg(&self) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_neg(),
            format: self.format,
        }
    }
}

fn suffix_chars_ok(s: &str) -> bool {
    // [eEinumkKMGTP]*[-+]?[0-9]*
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b"eEinumkKMGTP".contains(&b[i]) {
        i += 1;
    }
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    b[i..].iter().all(u8::is_ascii_digit)
}

/// (power of 1024, power of 10, format) for a suffix.
fn parse_suffix(s: &str) -> Result<(u32, i32, Format), QuantityError> {
    let dec = |e: i32| Ok((0, e, Format::DecimalSi));
    let bin = |p: u32| Ok((p, 0, Format::BinarySi));
    match s {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(1),
        "Mi" => bin(2),
        "Gi" => bin(3),
        "Ti" => bin(4),
        "Pi" => bin(5),
        "Ei" => bin(6),
        _ => {
            let rest = s
                .strip_prefix('e')
                .or_else(|| s.strip_prefix('E'))
                .ok_or(QuantityError::Suffix)?;
            let e: i32 = rest.parse().map_err(|_| QuantityError::Suffix)?;
            if rest.is_empty() || !(-100..=100).contains(&e) {
                return Err(QuantityError::Suffix);
            }
            Ok((0, e, Format::DecimalExponent))
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    /// The canonical form (`Quantity.String()` after `CanonicalizeBytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySi
            && (self.nanos.unsigned_abs() < (1024 * NANO) as u128 || self.nanos % NANO != 0)
        {
            // Small or fractional binary amounts print in decimal to avoid rounding.
            format = Format::DecimalSi;
        }
        if format == Format::BinarySi {
            let mut units = self.nanos / NANO;
            let mut pow = 0;
            while pow < 6 && units % 1024 == 0 {
                units /= 1024;
                pow += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][pow];
            return write!(f, "{units}{suffix}");
        }
        // Largest exponent (multiple of 3, from -9 to 18) that leaves an integer mantissa.
        let mut mantissa = self.nanos;
        let mut exp = -9;
        while exp < 18 && mantissa % 1000 == 0 {
            mantissa /= 1000;
            exp += 3;
        }
        if format == Format::DecimalExponent {
            return if exp == 0 {
                write!(f, "{mantissa}")
            } else {
                write!(f, "{mantissa}e{exp}")
            };
        }
        let suffix = match exp {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{mantissa}{suffix}")
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    /// Accepts a string or a JSON number, as `Quantity.UnmarshalJSON` does.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let s = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(serde::de::Error::custom(QuantityError::FormatWrong)),
        };
        Quantity::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parse_and_canonical_form() {
        let cases = [
            ("0", "0"),
            ("0m", "0"),
            ("0Ki", "0"),
            ("100m", "100m"),
            ("1", "1"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            (".5", "500m"),
            ("5.", "5"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("1025", "1025"),
            ("1000", "1k"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("12e2", "1200"),
            ("1e-3", "1e-3"),
            ("100Ki", "100Ki"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("-1", "-1"),
            ("+2", "2"),
            ("-100m", "-100m"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1u", "1u"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("129M", "129M"),
            ("123Mi", "123Mi"),
            ("1.000", "1"),
            ("2E", "2E"),
            ("8Ei", "8Ei"),
        ];
        for (input, want) in cases {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("", QuantityError::FormatWrong),
            ("abc", QuantityError::FormatWrong),
            ("1.2.3", QuantityError::Numeric),
            (".", QuantityError::Numeric),
            ("1Q", QuantityError::FormatWrong),
            ("1KiB", QuantityError::FormatWrong),
            ("1K", QuantityError::Suffix),
            ("1mi", QuantityError::Suffix),
            ("1e", QuantityError::Suffix),
            ("1 Gi", QuantityError::FormatWrong),
        ];
        for (input, want) in cases {
            assert_eq!(Quantity::parse(input), Err(want), "{input}");
        }
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn values_compare_and_arithmetic() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("100m").value(), 1, "Value rounds up");
        assert_eq!(q("1n").milli_value(), 1, "MilliValue rounds up");
        assert_eq!(q("-1n").milli_value(), -1);
        assert!(q("1") == q("1000m"));
        assert!(q("1Ki") == q("1024"));
        assert!(q("999m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        let mut a = q("100m");
        a.add(&q("900m"));
        assert_eq!(a.to_string(), "1");
        let mut m = q("1Gi");
        m.add(&q("512Mi"));
        assert_eq!(m.to_string(), "1536Mi");
        m.sub(&q("1536Mi"));
        assert!(m.is_zero());
        // Saturated extremes still print and negate without overflow.
        let mut big = q("-8Ei");
        for _ in 0..200 {
            big.add(&q("-8Ei"));
        }
        big.sub(&Quantity {
            nanos: i128::MAX,
            format: Format::BinarySi,
        });
        assert!(!big.to_string().is_empty());
        assert!(big.neg() > Quantity::ZERO);
        assert_eq!(
            Quantity::from_milli(250, Format::DecimalSi).to_string(),
            "250m"
        );
        assert_eq!(
            Quantity::from_value(2048, Format::BinarySi).to_string(),
            "2Ki"
        );
    }

    #[test]
    fn canonical_form_round_trips() {
        // Deterministic pseudo-random amounts in every suffix family: printing then parsing
        // gives back the same amount, and printing again the same string.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let suffixes = [
            "", "m", "n", "u", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "e-3", "E6",
        ];
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = x % 100_000;
            let frac = (x >> 20) % 1000;
            let suffix = suffixes[((x >> 40) % suffixes.len() as u64) as usize];
            let text = if (x >> 50).is_multiple_of(2) {
                format!("{mantissa}{suffix}")
            } else {
                format!("{mantissa}.{frac:03}{suffix}")
            };
            let a = q(&text);
            let printed = a.to_string();
            let b = q(&printed);
            assert_eq!(a, b, "{text} -> {printed}");
            assert_eq!(b.to_string(), printed, "{text}");
        }
    }

    #[test]
    fn serde_accepts_numbers_and_strings() {
        let v: Quantity = serde_json::from_str("\"250m\"").unwrap();
        assert_eq!(v.milli_value(), 250);
        let n: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(n.value(), 2);
        assert_eq!(serde_json::to_string(&q("1.5Gi")).unwrap(), "\"1536Mi\"");
        assert!(serde_json::from_str::<Quantity>("true").is_err());
    }
}
