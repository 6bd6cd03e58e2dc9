//! Catalog filters: a price band and a category level.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which items may be recommended: a price band (USD; items without a price fail a band)
/// and a category level that must appear in the item's category path (case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemFilter {
    min_price: Option<f64>,
    max_price: Option<f64>,
    category: Option<String>,
}

/// Builder of [`ItemFilter`].
#[derive(Debug, Clone, Default)]
pub struct ItemFilterBuilder(ItemFilter);

impl ItemFilter {
    /// Starts a builder (no constraint).
    pub fn builder() -> ItemFilterBuilder {
        ItemFilterBuilder::default()
    }
    /// Whether no constraint is set.
    pub fn is_empty(&self) -> bool {
        self.min_price.is_none() && self.max_price.is_none() && self.category.is_none()
    }
    /// Whether an item with this price and category path passes.
    pub fn allows(&self, price_usd: Option<f64>, category: &[String]) -> bool {
        let price_ok = match (self.min_price, self.max_price, price_usd) {
            (None, None, _) => true,
            (_, _, None) => false,
            (lo, hi, Some(x)) => lo.is_none_or(|l| x >= l) && hi.is_none_or(|h| x <= h),
        };
        let cat_ok = self.category.as_ref().is_none_or(|c| category.iter().any(|l| l.to_lowercase() == *c));
        price_ok && cat_ok
    }
}

impl ItemFilterBuilder {
    /// Lowest price (USD).
    pub fn min_price(mut self, v: Option<f64>) -> Self {
        self.0.min_price = v;
        self
    }
    /// Highest price (USD).
    pub fn max_price(mut self, v: Option<f64>) -> Self {
        self.0.max_price = v;
        self
    }
    /// A category level the item's path must contain.
    pub fn category(mut self, v: Option<&str>) -> Self {
        self.0.category = v.map(|c| c.trim().to_lowercase());
        self
    }
    /// Validates: prices finite and ≥ 0, min ≤ max, category not empty.
    pub fn build(self) -> Result<ItemFilter> {
        let f = self.0;
        for (name, v) in [("min_price", f.min_price), ("max_price", f.max_price)] {
            if let Some(x) = v {
                if !(x.is_finite() && x >= 0.0) {
                    return Err(Error::Invalid { name, value: x.to_string(), rule: "must be finite and >= 0" });
                }
            }
        }
        if let (Some(lo), Some(hi)) = (f.min_price, f.max_price) {
            if lo > hi {
                return Err(Error::Invalid { name: "min_price", value: lo.to_string(), rule: "must be <= max_price" });
            }
        }
        if f.category.as_deref() == Some("") {
            return Err(Error::Invalid { name: "category", value: String::new(), rule: "must not be empty" });
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_band_and_category() {
        let f = ItemFilter::builder().min_price(Some(10.0)).max_price(Some(20.0)).category(Some("Shoes")).build();
        let f = f.unwrap();
        let shoes = vec!["Footwear".to_string(), "shoes".to_string()];
        assert!(f.allows(Some(15.0), &shoes));
        assert!(!f.allows(Some(25.0), &shoes));
        assert!(!f.allows(None, &shoes));
        assert!(!f.allows(Some(15.0), &["bags".to_string()]));
        assert!(ItemFilter::default().allows(None, &[]));
        assert!(ItemFilter::builder().min_price(Some(5.0)).max_price(Some(1.0)).build().is_err());
        assert!(ItemFilter::builder().min_price(Some(f64::NAN)).build().is_err());
    }
}
