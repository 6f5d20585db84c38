//! Building blocks of the canonical request: URI, query string, header values.

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved characters: never percent-encoded in a canonical form.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends `bytes` to `out`, percent-encoding (upper-case hex) everything but
/// the unreserved set, and `/` too when `keep_slash`.
pub(crate) fn uri_encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 0x0f) as usize] as char);
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space,
/// `%XY` with two hex digits is a byte, any other `%` is kept literally
/// (the same leniency as the `form_urlencoded` crate the SDK signer uses).
pub(crate) fn form_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                match (
                    s.get(i + 1).copied().and_then(hex_val),
                    s.get(i + 2).copied().and_then(hex_val),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h << 4) | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The query string split into decoded `(name, value)` pairs, in wire order.
/// Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty
/// value.
pub(crate) fn parse_query(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name.as_bytes()), form_decode(value.as_bytes()))
        })
        .collect()
}

/// Canonical query string: every pair re-encoded with the unreserved set
/// (so a space is `%20`, `+` is `%2B`, `=` is `%3D`), sorted by encoded name
/// then encoded value, joined with `&`. Pairs for which `skip` returns true
/// (the decoded name) are left out; used for `X-Amz-Signature` in presigned
/// URLs.
pub(crate) fn canonical_query(
    pairs: &[(Vec<u8>, Vec<u8>)],
    skip: impl Fn(&[u8]) -> bool,
) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| !skip(name))
        .map(|(name, value)| {
            let mut n = String::with_capacity(name.len());
            uri_encode_into(&mut n, name, false);
            let mut v = String::with_capacity(value.len());
            uri_encode_into(&mut v, value, false);
            (n, v)
        })
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Removes `.` and `..` segments and empty segments (`//`), keeping a leading
/// `/` and a trailing `/` where RFC 3986 section 5.2.4 would. This is what both
/// botocore (`remove_dot_segments`) and aws-sigv4 (`UriPathNormalizationMode::
/// Enabled`, the default for every service but S3) do to the path before
/// encoding it. Works on the still-encoded path, so `%2E` and `%2F` are not
/// special.
fn normalize_path(path: &str) -> String {
    let path = if path.starts_with('/') {
        std::borrow::Cow::Borrowed(path)
    } else {
        std::borrow::Cow::Owned(format!("/{path}"))
    };
    if !path.contains("//") && !path.contains('.') {
        return path.into_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    let trailing = ["/", "/.", "/.."].iter().any(|t| path.ends_with(t));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// Canonical URI for a non-S3 service: the path as received (still
/// percent-encoded), dot/empty segments removed, then URI-encoded once more
/// with `/` kept ("double encoding": `%3A` on the wire becomes `%253A`, a
/// literal `:` becomes `%3A`). An empty path is `/`.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    let normalized = normalize_path(raw_path);
    let mut out = String::with_capacity(normalized.len() + 16);
    uri_encode_into(&mut out, normalized.as_bytes(), true);
    out
}

/// Trims leading/trailing spaces and tabs and collapses every inner run of
/// spaces into one space (SigV4 "trimall"; inner tabs are left alone, as the
/// AWS SDKs for Rust, Java and Go do).
pub(crate) fn trim_header_value_into(out: &mut Vec<u8>, value: &[u8]) {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |e| e + 1);
    let mut prev_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if !prev_space {
                out.push(b);
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_lenient() {
        assert_eq!(form_decode(b"a+b%20c"), b"a b c");
        assert_eq!(form_decode(b"%3D%3d"), b"==");
        assert_eq!(form_decode(b"%"), b"%");
        assert_eq!(form_decode(b"%4"), b"%4");
        assert_eq!(form_decode(b"%zz"), b"%zz");
        assert_eq!(form_decode(b"abc%"), b"abc%");
        assert_eq!(form_decode(b"%41%"), b"A%");
        assert_eq!(form_decode(b"%e1%88%b4"), "\u{1234}".as_bytes());
    }

    #[test]
    fn query() {
        let q = parse_query("b=2&a=&c&&a=1+1&z=%7e%2b");
        assert_eq!(canonical_query(&q, |_| false), "a=&a=1%201&b=2&c=&z=~%2B");
        let q = parse_query("nextToken=abc%3D%3D&maxResults=10");
        assert_eq!(
            canonical_query(&q, |_| false),
            "maxResults=10&nextToken=abc%3D%3D"
        );
        assert_eq!(canonical_query(&parse_query(""), |_| false), "");
    }

    #[test]
    fn uri() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a%3Ab:c/-_.~"), "/a%253Ab%3Ac/-_.~");
        assert_eq!(canonical_uri("//a//b/"), "/a/b/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/a/b/.."), "/a/");
        assert_eq!(canonical_uri("/.."), "/");
        assert_eq!(canonical_uri("/a/.b/..c"), "/a/.b/..c");
        assert_eq!(canonical_uri("a"), "/a");
        assert_eq!(canonical_uri("/%2E%2E/x"), "/%252E%252E/x");
    }

    #[test]
    fn trim() {
        let mut out = Vec::new();
        trim_header_value_into(&mut out, b"  a   b \t c\t ");
        assert_eq!(out, b"a b \t c");
        out.clear();
        trim_header_value_into(&mut out, b"   ");
        assert_eq!(out, b"");
    }
}
