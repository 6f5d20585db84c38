//! Identifiers (behaviour rule B10). All random parts come from the OS CSPRNG.
use rand::Rng;
use rand::rngs::OsRng;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = OsRng;
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// `lowercase(name) + "-" + 10 chars [a-z0-9]`: payment manager and connector ids.
pub fn named_id(name: &str) -> String {
    format!(
        "{}-{}",
        name.to_ascii_lowercase(),
        random_from(LOWER_ALNUM, 10)
    )
}

/// `payment-instrument-` + 15 chars `[0-9a-zA-Z]` (34 in all).
pub fn instrument_id() -> String {
    format!("payment-instrument-{}", random_from(ALNUM, 15))
}

/// `payment-session-` + 15 chars `[0-9a-zA-Z]` (31 in all).
pub fn session_id() -> String {
    format!("payment-session-{}", random_from(ALNUM, 15))
}

/// A random version-4 UUID (ProcessPayment ids).
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    OsRng.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let m = named_id("MyManager");
        assert!(m.starts_with("mymanager-"));
        assert_eq!(m.len(), "mymanager-".len() + 10);
        assert!(m[10..].bytes().all(|c| LOWER_ALNUM.contains(&c)));
        let i = instrument_id();
        assert_eq!(i.len(), 34);
        assert!(i[19..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(session_id().len(), 31);
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(instrument_id(), instrument_id());
    }
}
