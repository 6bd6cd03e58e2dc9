//! How much each past interaction counts in a user's history: a weight per interaction kind
//! (purchase > cart > wishlist > view), ratings scaled by their value, and an optional
//! recency decay. Every protocol and the CLI build cross-site histories through
//! [`HistoryWeights::weigh`], so every model sees the same weights.

use std::collections::HashMap;

use crate::{Error, EventTime, InteractionKind, InteractionRow, ItemId, Result};

/// Weights of a history's interactions.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryWeights {
    kind: [f32; 6],
    rating_max: f32,
    half_life: Option<f64>,
}

/// Builder of [`HistoryWeights`].
#[derive(Debug, Clone)]
pub struct HistoryWeightsBuilder(HistoryWeights);

impl Default for HistoryWeights {
    fn default() -> Self {
        HistoryWeights::builder().build().expect("default weights are valid")
    }
}

impl HistoryWeights {
    /// Defaults: purchase 1, review 1 (a review implies a purchase), rating 1 scaled by
    /// value / 5, cart 0.6, wish list 0.4, view 0.2; no recency decay.
    pub fn builder() -> HistoryWeightsBuilder {
        let mut kind = [0f32; 6];
        for (k, w) in [
            (InteractionKind::View, 0.2),
            (InteractionKind::Wishlist, 0.4),
            (InteractionKind::Cart, 0.6),
            (InteractionKind::Purchase, 1.0),
            (InteractionKind::Rating, 1.0),
            (InteractionKind::Review, 1.0),
        ] {
            kind[k.code() as usize] = w;
        }
        HistoryWeightsBuilder(HistoryWeights { kind, rating_max: 5.0, half_life: None })
    }

    /// Every interaction counts 1 (no kind weights, no rating scaling, no decay).
    pub fn uniform() -> HistoryWeights {
        HistoryWeights { kind: [1.0; 6], rating_max: 0.0, half_life: None }
    }

    /// The weight of one interaction `age` time units before the user's latest one.
    pub fn weight(&self, row: &InteractionRow, age: f64) -> f32 {
        let mut w = self.kind[row.kind.code() as usize];
        if let (Some(v), true) = (row.value, self.rating_max > 0.0) {
            if matches!(row.kind, InteractionKind::Rating | InteractionKind::Review) {
                w *= (v / self.rating_max).clamp(0.0, 1.0);
            }
        }
        if let Some(h) = self.half_life {
            w *= 0.5f64.powf(age.max(0.0) / h) as f32;
        }
        w
    }

    /// The weighted history of `rows` (one user's interactions): one entry per distinct
    /// item, in item order, holding its strongest interaction's weight. Recency is measured
    /// from the latest of the rows, in days for timestamps and in positions for sequences.
    pub fn weigh<'a>(&self, rows: impl IntoIterator<Item = &'a InteractionRow>) -> Vec<(ItemId, f32)> {
        let rows: Vec<&InteractionRow> = rows.into_iter().collect();
        let time = |r: &InteractionRow| match r.time {
            Some(EventTime::Timestamp(t)) => Some(t as f64 / 86_400.0),
            Some(EventTime::Sequence(p)) => Some(p as f64),
            None => None,
        };
        let latest = rows.iter().filter_map(|r| time(r)).fold(f64::NEG_INFINITY, f64::max);
        let mut best: HashMap<ItemId, f32> = HashMap::new();
        for r in rows {
            let age = time(r).map(|t| latest - t).unwrap_or(0.0);
            let w = self.weight(r, age);
            let e = best.entry(r.item).or_insert(w);
            *e = e.max(w);
        }
        let mut out: Vec<(ItemId, f32)> = best.into_iter().filter(|(_, w)| *w > 0.0).collect();
        out.sort_unstable_by_key(|e| e.0);
        out
    }
}

impl HistoryWeightsBuilder {
    /// Weight of one interaction kind.
    pub fn kind(mut self, kind: InteractionKind, w: f32) -> Self {
        self.0.kind[kind.code() as usize] = w;
        self
    }
    /// The rating that counts fully (0: ratings are not scaled).
    pub fn rating_max(mut self, v: f32) -> Self {
        self.0.rating_max = v;
        self
    }
    /// Half-life of the recency decay, in days for timestamped data and in positions for
    /// sequences (`None`: no decay).
    pub fn half_life(mut self, v: Option<f64>) -> Self {
        self.0.half_life = v;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<HistoryWeights> {
        let c = self.0;
        if c.kind.iter().any(|w| !(0.0..=1000.0).contains(w)) {
            return Err(Error::Inconsistent(format!("interaction kind weights must be in [0, 1000]: {:?}", c.kind)));
        }
        if !(c.rating_max >= 0.0 && c.rating_max.is_finite()) {
            return Err(Error::Inconsistent(format!("rating_max must be ≥ 0, got {}", c.rating_max)));
        }
        if let Some(h) = c.half_life {
            if !(h > 0.0 && h.is_finite()) {
                return Err(Error::Inconsistent(format!("half-life must be > 0, got {h}")));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Split;

    fn row(item: ItemId, kind: InteractionKind, value: Option<f32>, day: i64) -> InteractionRow {
        InteractionRow {
            user: 0,
            item,
            kind,
            value,
            time: Some(EventTime::Timestamp(day * 86_400)),
            split: Split::Train,
        }
    }

    #[test]
    fn kinds_ratings_and_recency() {
        let rows = [
            row(1, InteractionKind::View, None, 10),
            row(1, InteractionKind::Purchase, None, 10), // the strongest interaction with item 1 wins
            row(2, InteractionKind::Wishlist, None, 10),
            row(3, InteractionKind::Rating, Some(2.0), 10),
            row(4, InteractionKind::Cart, None, 0),
        ];
        let plain = HistoryWeights::default().weigh(&rows);
        assert_eq!(plain, vec![(1, 1.0), (2, 0.4), (3, 0.4), (4, 0.6)]);
        let decayed = HistoryWeights::builder().half_life(Some(10.0)).build().unwrap().weigh(&rows);
        assert!((decayed[3].1 - 0.3).abs() < 1e-6, "ten days old at a ten-day half-life: {decayed:?}");
        assert_eq!(decayed[0].1, 1.0);
        assert!(HistoryWeights::uniform().weigh(&rows).iter().all(|e| e.1 == 1.0));
        assert!(HistoryWeights::builder().half_life(Some(0.0)).build().is_err());
        assert!(HistoryWeights::builder().kind(InteractionKind::View, -1.0).build().is_err());
    }
}
