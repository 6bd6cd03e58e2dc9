//! Normalisation of mismatched catalog metadata: text clean-up, prices with currencies,
//! category paths and brand names.

use warmstart_core::Price;

/// Upper bound for a plausible product price in any currency's main unit.
pub const MAX_PLAUSIBLE_PRICE: f64 = 1.0e8;

/// Removes HTML tags, decodes entities, drops control characters and collapses white space.
pub fn clean_text(raw: &str) -> String {
    let mut no_tags = String::with_capacity(raw.len());
    let mut in_tag = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' if !in_tag && chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || *n == '/' || *n == '!') => {
                in_tag = true;
                no_tags.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            _ => no_tags.push(c),
        }
    }
    let decoded = decode_entities(&no_tags);
    let mut out = String::with_capacity(decoded.len());
    for word in decoded.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Decodes named (common ones) and numeric HTML character references.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after.find(';').filter(|&e| e > 0 && e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let ch = if let Some(num) = name.strip_prefix('#') {
                let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    num.parse::<u32>().ok()
                };
                code.and_then(char::from_u32)
            } else {
                match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some(' '),
                    "ndash" => Some('–'),
                    "mdash" => Some('—'),
                    "rsquo" | "lsquo" => Some('\''),
                    "rdquo" | "ldquo" => Some('"'),
                    "euro" => Some('€'),
                    "pound" => Some('£'),
                    "yen" => Some('¥'),
                    "reg" => Some('®'),
                    "trade" => Some('™'),
                    "copy" => Some('©'),
                    "eacute" => Some('é'),
                    "hellip" => Some('…'),
                    "times" => Some('×'),
                    _ => None,
                }
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a price could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceError {
    /// No number in the text.
    NoNumber,
    /// A number but no currency, and no default currency given.
    NoCurrency,
    /// Negative, not finite, or implausibly large.
    Absurd(f64),
}

impl std::fmt::Display for PriceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriceError::NoNumber => write!(f, "no number in price"),
            PriceError::NoCurrency => write!(f, "price has no currency and none was configured"),
            PriceError::Absurd(v) => write!(f, "absurd price {v}"),
        }
    }
}

const ISO_CODES: &[&str] = &[
    "USD", "EUR", "GBP", "INR", "JPY", "CNY", "CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "PLN", "BRL", "MXN", "KRW",
    "RUB", "TRY", "NZD", "SGD", "HKD", "ZAR", "AED", "CZK", "HUF",
];

fn code(c: &str) -> [u8; 3] {
    let b = c.as_bytes();
    [b[0], b[1], b[2]]
}

/// Detects the currency of a price text from symbols ("$", "€", "₹", "Rs.") or ISO codes.
pub fn detect_currency(text: &str) -> Option<[u8; 3]> {
    let upper = text.to_uppercase();
    for w in upper.split(|c: char| !c.is_ascii_alphabetic()) {
        if w.len() == 3 && ISO_CODES.contains(&w) {
            return Some(code(w));
        }
    }
    let symbols: [(&str, &str); 10] = [
        ("US$", "USD"),
        ("C$", "CAD"),
        ("A$", "AUD"),
        ("€", "EUR"),
        ("£", "GBP"),
        ("₹", "INR"),
        ("RS.", "INR"),
        ("¥", "JPY"),
        ("₩", "KRW"),
        ("$", "USD"),
    ];
    for (sym, iso) in symbols {
        if upper.contains(sym) {
            return Some(code(iso));
        }
    }
    if upper.split_whitespace().any(|w| w == "RS") {
        return Some(code("INR"));
    }
    None
}

/// Parses a price such as `"$1,299.00"`, `"1.299,00 €"`, `"INR 799"` or `"CHF 1'200.50"`.
/// `default_currency` applies when the text names none.
pub fn parse_price(text: &str, default_currency: Option<&str>) -> Result<Price, PriceError> {
    let text = decode_entities(text);
    let number = parse_amount(&text).ok_or(PriceError::NoNumber)?;
    if !number.is_finite() || !(0.0..=MAX_PLAUSIBLE_PRICE).contains(&number) {
        return Err(PriceError::Absurd(number));
    }
    let currency = detect_currency(&text)
        .or_else(|| default_currency.filter(|c| c.len() == 3).map(|c| code(&c.to_ascii_uppercase())))
        .ok_or(PriceError::NoCurrency)?;
    Ok(Price { amount: number, currency })
}

/// Extracts the numeric amount, deciding which of `.` and `,` is the decimal separator.
fn parse_amount(text: &str) -> Option<f64> {
    // The first run of digits and separators (a leading minus is kept so it is reported).
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let negative = text[..start].trim_end().ends_with('-');
    let run: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '\'' | ' ' | '\u{a0}' | '\u{202f}'))
        .filter(|c| !matches!(c, '\'' | ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    let run = run.trim_end_matches(['.', ',']);
    let (dots, commas) = (run.matches('.').count(), run.matches(',').count());
    let decimal = match (dots, commas) {
        (0, 0) => None,
        (_, 0) => single_separator_decimal(run, '.', dots),
        (0, _) => single_separator_decimal(run, ',', commas),
        _ => {
            // Both present: the last one is the decimal separator.
            let last_dot = run.rfind('.').unwrap_or(0);
            let last_comma = run.rfind(',').unwrap_or(0);
            Some(if last_dot > last_comma { '.' } else { ',' })
        }
    };
    let mut s = String::with_capacity(run.len());
    for c in run.chars() {
        if c.is_ascii_digit() {
            s.push(c);
        } else if Some(c) == decimal {
            s.push('.');
        }
    }
    let v: f64 = s.parse().ok()?;
    Some(if negative { -v } else { v })
}

fn single_separator_decimal(run: &str, sep: char, count: usize) -> Option<char> {
    if count > 1 {
        return None; // "1.299.000" or "1,299,000": thousands separators
    }
    let after = run.len() - run.rfind(sep).unwrap() - 1;
    if after == 3 {
        None // "1,299" or "1.299": a thousands separator
    } else {
        Some(sep)
    }
}

/// Splits a category path on `>`, `»`, `›`, `|` or `/` and cleans each segment.
pub fn split_category(raw: &str) -> Vec<String> {
    let cleaned = clean_text(raw);
    let mut out: Vec<String> = Vec::new();
    for seg in cleaned.split(['>', '»', '›', '|', '/']) {
        let seg = seg.trim();
        if seg.is_empty() {
            continue;
        }
        if out.last().is_some_and(|l| l.eq_ignore_ascii_case(seg)) {
            continue;
        }
        out.push(seg.to_string());
    }
    out
}

/// Canonical brand key: lower case, no trademark signs or punctuation, no legal suffix
/// ("Levi's®" and "LEVIS" give "levis"; "Acme, Inc." gives "acme").
pub fn canonical_brand(raw: &str) -> Option<String> {
    let cleaned = clean_text(raw).to_lowercase();
    let mut s = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        if c.is_alphanumeric() || c == '&' || c == '+' {
            s.push(c);
        } else if c == '\'' || c == '’' || c == '®' || c == '™' || c == '©' {
            // dropped without a space: "levi's" -> "levis"
        } else {
            s.push(' ');
        }
    }
    let mut words: Vec<&str> = s.split_whitespace().collect();
    while words.len() > 1
        && matches!(
            *words.last().unwrap(),
            "inc" | "ltd" | "llc" | "gmbh" | "co" | "corp" | "corporation" | "plc" | "sa" | "ag"
        )
    {
        words.pop();
    }
    let out = words.join(" ");
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (f64, String) {
        let pr = parse_price(s, None).unwrap();
        (pr.amount, pr.currency_code().to_string())
    }

    #[test]
    fn prices_in_many_formats() {
        assert_eq!(p("$1,299.00"), (1299.0, "USD".into()));
        assert_eq!(p("1.299,00 €"), (1299.0, "EUR".into()));
        assert_eq!(p("INR 799"), (799.0, "INR".into()));
        assert_eq!(p("₹ 1,499"), (1499.0, "INR".into()));
        assert_eq!(p("Rs. 2,999.50"), (2999.5, "INR".into()));
        assert_eq!(p("£12.5"), (12.5, "GBP".into()));
        assert_eq!(p("CHF 1'200.50"), (1200.5, "CHF".into()));
        assert_eq!(p("1 299,99 EUR"), (1299.99, "EUR".into()));
        assert_eq!(p("12,50&nbsp;&euro;"), (12.5, "EUR".into()));
        assert_eq!(p("US$ 3"), (3.0, "USD".into()));
        assert_eq!(parse_price("19.99", Some("usd")).unwrap().currency_code(), "USD");
        assert_eq!(parse_price("19.99", None), Err(PriceError::NoCurrency));
        assert_eq!(parse_price("call us", Some("USD")), Err(PriceError::NoNumber));
        assert!(matches!(parse_price("-5 USD", None), Err(PriceError::Absurd(_))));
        assert!(matches!(parse_price("$999,999,999,999", None), Err(PriceError::Absurd(_))));
    }

    #[test]
    fn text_cleanup() {
        assert_eq!(clean_text("  <p>Soft&nbsp;cotton <b>tee</b></p>\n\t&amp; more&#33; "), "Soft cotton tee & more!");
        assert_eq!(clean_text("5 < 6 &unknown; a&b"), "5 < 6 &unknown; a&b");
        assert_eq!(clean_text("caf&#xE9;"), "café");
        assert_eq!(clean_text(""), "");
    }

    #[test]
    fn categories_and_brands() {
        assert_eq!(split_category("Apparel > Topwear"), vec!["Apparel", "Topwear"]);
        assert_eq!(
            split_category(" Home &amp; Kitchen / / Cookware|Pans "),
            vec!["Home & Kitchen", "Cookware", "Pans"]
        );
        assert_eq!(split_category("Shoes » Shoes › Running"), vec!["Shoes", "Running"]);
        assert!(split_category(" > ").is_empty());
        assert_eq!(canonical_brand("Levi's®").as_deref(), Some("levis"));
        assert_eq!(canonical_brand("LEVIS").as_deref(), Some("levis"));
        assert_eq!(canonical_brand("Acme, Inc.").as_deref(), Some("acme"));
        assert_eq!(canonical_brand("H&M").as_deref(), Some("h&m"));
        assert_eq!(canonical_brand("Dr. Martens").as_deref(), Some("dr martens"));
        assert_eq!(canonical_brand(" ™ "), None);
    }
}
