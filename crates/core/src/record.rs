//! Records as they come out of an importer and go into the store: keyed by external ids
//! (strings), before compact ids are assigned.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A shop. `key` is unique across the store (e.g. `amazon-art`); `dataset` groups the sites
/// that one import brought in (e.g. `amazon-art-office`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Unique key of the site.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Group the site belongs to (the import source or the user's own label).
    pub dataset: String,
}

/// A price with its ISO 4217 currency code.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Amount in the currency's main unit (e.g. 1299.0 for "$1,299.00").
    pub amount: f64,
    /// Three-letter ISO 4217 code, upper case.
    pub currency: [u8; 3],
}

impl Price {
    /// The currency code as text.
    pub fn currency_code(&self) -> &str {
        std::str::from_utf8(&self.currency).unwrap_or("XXX")
    }

    /// Approximate amount in US dollars, from a fixed table of reference rates
    /// (documented in ARCHITECTURE.md); `None` for currencies outside the table.
    pub fn approx_usd(&self) -> Option<f64> {
        let rate = match self.currency_code() {
            "USD" => 1.0,
            "EUR" => 1.08,
            "GBP" => 1.27,
            "INR" => 0.012,
            "JPY" => 0.0067,
            "CNY" => 0.14,
            "CAD" => 0.73,
            "AUD" => 0.66,
            "CHF" => 1.13,
            "SEK" => 0.095,
            "NOK" => 0.093,
            "DKK" => 0.145,
            "PLN" => 0.25,
            "BRL" => 0.18,
            "MXN" => 0.055,
            "KRW" => 0.00073,
            "RUB" => 0.011,
            "TRY" => 0.03,
            _ => return None,
        };
        Some(self.amount * rate)
    }
}

/// Where a product's picture lives: a file path, an URL, or a member of an archive
/// (`archive.tar.gz#images/1.jpg`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef(pub String);

/// Which product fields the source did not provide (or provided unusable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MissingFields(pub u8);

impl MissingFields {
    /// Title missing.
    pub const TITLE: u8 = 1;
    /// Description missing.
    pub const DESCRIPTION: u8 = 2;
    /// Brand missing.
    pub const BRAND: u8 = 4;
    /// Category path missing.
    pub const CATEGORY: u8 = 8;
    /// Price missing.
    pub const PRICE: u8 = 16;
    /// Image missing.
    pub const IMAGE: u8 = 32;
    /// All flags with their field names, in display order.
    pub const FIELDS: [(u8, &'static str); 6] = [
        (Self::TITLE, "title"),
        (Self::DESCRIPTION, "description"),
        (Self::BRAND, "brand"),
        (Self::CATEGORY, "category"),
        (Self::PRICE, "price"),
        (Self::IMAGE, "image"),
    ];

    /// Whether `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// Names of the missing fields.
    pub fn names(self) -> Vec<&'static str> {
        Self::FIELDS.iter().filter(|(f, _)| self.has(*f)).map(|(_, n)| *n).collect()
    }
}

/// A product of one shop, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Key of the site that sells it.
    pub site: String,
    /// The shop's own id for it (unique within the site).
    pub external_id: String,
    /// Cleaned title (may be empty for id-only data; then `missing` says so).
    pub title: String,
    /// Cleaned description.
    pub description: Option<String>,
    /// Canonical brand (lower case, no punctuation).
    pub brand: Option<String>,
    /// Category path from the root, each segment cleaned (e.g. `["Apparel", "Topwear"]`).
    pub category: Vec<String>,
    /// Price, if known and plausible.
    pub price: Option<Price>,
    /// Picture, if any.
    pub image: Option<ImageRef>,
    /// Free attributes (colour, gender, season, ...).
    pub attributes: BTreeMap<String, String>,
    /// Fields the source lacked.
    pub missing: MissingFields,
}

impl Product {
    /// A product with only site, id and title; everything else missing.
    pub fn new(site: impl Into<String>, external_id: impl Into<String>, title: impl Into<String>) -> Self {
        let title = title.into();
        let mut p = Product {
            site: site.into(),
            external_id: external_id.into(),
            title,
            description: None,
            brand: None,
            category: Vec::new(),
            price: None,
            image: None,
            attributes: BTreeMap::new(),
            missing: MissingFields::default(),
        };
        p.refresh_missing();
        p
    }

    /// Recompute `missing` from the fields.
    pub fn refresh_missing(&mut self) {
        let mut m = 0;
        if self.title.is_empty() {
            m |= MissingFields::TITLE;
        }
        if self.description.as_deref().is_none_or(str::is_empty) {
            m |= MissingFields::DESCRIPTION;
        }
        if self.brand.as_deref().is_none_or(str::is_empty) {
            m |= MissingFields::BRAND;
        }
        if self.category.is_empty() {
            m |= MissingFields::CATEGORY;
        }
        if self.price.is_none() {
            m |= MissingFields::PRICE;
        }
        if self.image.is_none() {
            m |= MissingFields::IMAGE;
        }
        self.missing = MissingFields(m);
    }

    /// The category path joined with ` > `.
    pub fn category_path(&self) -> String {
        self.category.join(" > ")
    }
}

/// What a user did with a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InteractionKind {
    /// Looked at the product page.
    View,
    /// Put it on a wish list.
    Wishlist,
    /// Put it in the cart.
    Cart,
    /// Bought it.
    Purchase,
    /// Rated it (value holds the rating).
    Rating,
    /// Wrote a review (text may hold it).
    Review,
}

impl InteractionKind {
    /// All kinds, in code order.
    pub const ALL: [InteractionKind; 6] =
        [Self::View, Self::Wishlist, Self::Cart, Self::Purchase, Self::Rating, Self::Review];

    /// Stable small integer used by the store.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`code`](Self::code).
    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(c as usize).copied()
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Wishlist => "wishlist",
            Self::Cart => "cart",
            Self::Purchase => "purchase",
            Self::Rating => "rating",
            Self::Review => "review",
        }
    }
}

impl fmt::Display for InteractionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InteractionKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "view" | "click" | "detail" => Self::View,
            "wishlist" | "wish" | "like" | "favorite" | "favourite" => Self::Wishlist,
            "cart" | "add_to_cart" | "addtocart" => Self::Cart,
            "purchase" | "order" | "buy" | "transaction" => Self::Purchase,
            "rating" | "rate" => Self::Rating,
            "review" => Self::Review,
            _ => {
                return Err(Error::UnknownValue {
                    what: "interaction kind",
                    value: s.to_string(),
                    expected: "view, wishlist, cart, purchase, rating, review",
                })
            }
        })
    }
}

/// When an interaction happened: a Unix timestamp or a position in the user's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventTime {
    /// Seconds since the Unix epoch.
    Timestamp(i64),
    /// Position in the user's ordered history (0 = first).
    Sequence(i64),
}

/// The published split an interaction belongs to, for datasets that come with one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data (the default for data without a split).
    #[default]
    Train,
    /// Validation hold-out.
    Valid,
    /// Test hold-out.
    Test,
}

impl Split {
    /// Stable small integer used by the store.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// Inverse of [`code`](Self::code).
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Self::Train),
            1 => Some(Self::Valid),
            2 => Some(Self::Test),
            _ => None,
        }
    }
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Valid => "valid",
            Self::Test => "test",
        }
    }
}

/// One user action on one product, keyed by external ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Pseudonymous user key, unique across the store (importers prefix it with a namespace).
    pub user: String,
    /// Site key of the product.
    pub site: String,
    /// External id of the product within its site.
    pub product: String,
    /// What happened.
    pub kind: InteractionKind,
    /// Rating or quantity, if any.
    pub value: Option<f32>,
    /// Review text, if any.
    pub text: Option<String>,
    /// When, if known.
    pub time: Option<EventTime>,
    /// Published split, if the source has one.
    pub split: Split,
}
