//! Building URLs from ids.

/// `s` percent-encoded as one URL path segment (RFC 3986: every byte outside the unreserved
/// set `A–Z a–z 0–9 - _ . ~` becomes `%XX`).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reserved_bytes_are_escaped() {
        assert_eq!(super::path_segment("a b/ü-1.~"), "a%20b%2F%C3%BC-1.~");
    }
}
