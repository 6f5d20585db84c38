//! Exact money: USD amounts as integer micro-dollars. USDC has 6 decimals and counts 1:1
//! as USD (B21), so one micro-dollar is one atomic USDC unit. No floats anywhere.

/// Micro-dollars per dollar.
pub const MICROS: i64 = 1_000_000;
/// The largest session cap (B20): 10,000 USD.
pub const MAX_CAP: i64 = 10_000 * MICROS;
/// The largest single payment (B25), whatever its session: the largest session cap, the
/// one ceiling AgentCore publishes, in micro-dollars (= atomic USDC units).
pub const MAX_PAYMENT: i64 = MAX_CAP;

/// Parse a decimal USD string ("1", "0.10", "10000.000000") into micro-dollars.
/// At most 6 decimal places; digits and one optional point only; no sign, no exponent.
pub fn parse_usd(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 6 || (text.contains('.') && frac.is_empty()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok().filter(|w: &i64| *w <= MAX_CAP)?
    };
    let mut micros = 0i64;
    for (i, d) in frac.bytes().enumerate() {
        micros += (d - b'0') as i64 * 10i64.pow(5 - i as u32);
    }
    whole.checked_mul(MICROS)?.checked_add(micros)
}

/// Format micro-dollars as a decimal string with at least two decimals: 900000 -> "0.90",
/// 123456 -> "0.123456", 10_000_000_000 -> "10000.00".
pub fn format_usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let whole = m / MICROS as u64;
    let frac = format!("{:06}", m % MICROS as u64);
    let frac = frac.trim_end_matches('0');
    let frac = if frac.len() < 2 {
        format!("{frac:0<2}")
    } else {
        frac.to_string()
    };
    format!("{sign}{whole}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(parse_usd("1"), Some(1_000_000));
        assert_eq!(parse_usd("1.00"), Some(1_000_000));
        assert_eq!(parse_usd("0.10"), Some(100_000));
        assert_eq!(parse_usd(".5"), Some(500_000));
        assert_eq!(parse_usd("0.000001"), Some(1));
        assert_eq!(parse_usd("10000"), Some(MAX_CAP));
        for bad in [
            "",
            ".",
            "1.",
            "-1",
            "+1",
            "1e3",
            "0.0000001",
            "1,0",
            " 1",
            "abc",
            "99999999999999999999",
        ] {
            assert_eq!(parse_usd(bad), None, "{bad}");
        }
    }

    #[test]
    fn format() {
        assert_eq!(format_usd(900_000), "0.90");
        assert_eq!(format_usd(123_456), "0.123456");
        assert_eq!(format_usd(MAX_CAP), "10000.00");
        assert_eq!(format_usd(0), "0.00");
        assert_eq!(format_usd(1), "0.000001");
        assert_eq!(format_usd(1_500_000), "1.50");
    }
}
