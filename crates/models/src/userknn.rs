//! User-kNN: a shopper is compared with every training user through the items they share
//! (cosine of the two histories, shrunk), and the shop's items are scored by the nearest
//! users who bought in that shop, each weighted by their similarity raised to an exponent.
//! The neighbourhood is chosen per shop (only users with items in the ranked shop count), as
//! item-kNN keeps neighbours per site, so a cold-start shopper's neighbours are users who
//! link their shop to the new one.
//!
//! The fitted model holds the training matrix itself: it is a server-side model, never
//! exported to a device (it would carry other people's histories).

use std::ops::Range;

use warmstart_core::{top_k_by, CsrMatrix, ItemId};

use crate::artifact::{expect_len, unpack_lists, ArtifactReader, ArtifactWriter};
use crate::{check, Error, Fit, History, Recommender, Result, TrainData};

/// Kind of a saved user-kNN model.
pub(crate) const KIND: &str = "userknn";

/// Hyper-parameters of [`UserKnn`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserKnnConfig {
    neighbours: usize,
    shrink: f32,
    exponent: f32,
}

/// Builder of [`UserKnnConfig`].
#[derive(Debug, Clone)]
pub struct UserKnnBuilder(UserKnnConfig);

impl UserKnnConfig {
    /// Starts a builder: 800 neighbours, no shrink, exponent 0.5 (the best mean NDCG@10 of
    /// `warmstart tune`'s grid over the validation users of the six Amazon and CDRIB tasks).
    pub fn builder() -> UserKnnBuilder {
        UserKnnBuilder(UserKnnConfig { neighbours: 800, shrink: 0.0, exponent: 0.5 })
    }
}

impl UserKnnBuilder {
    /// Nearest users that score a shop.
    pub fn neighbours(mut self, n: usize) -> Self {
        self.0.neighbours = n;
        self
    }
    /// Shrinkage added to the cosine's denominator (damps users sharing few items).
    pub fn shrink(mut self, s: f32) -> Self {
        self.0.shrink = s;
        self
    }
    /// Similarities are raised to this power (above 1 favours the nearest users).
    pub fn exponent(mut self, e: f32) -> Self {
        self.0.exponent = e;
        self
    }
    /// Validates.
    pub fn build(self) -> Result<UserKnnConfig> {
        let c = self.0;
        check("neighbours", (1..=100_000).contains(&c.neighbours), c.neighbours, "must be 1 to 100000")?;
        check("shrink", c.shrink >= 0.0 && c.shrink.is_finite(), c.shrink, "must be finite and >= 0")?;
        check("exponent", c.exponent > 0.0 && c.exponent <= 8.0, c.exponent, "must be in (0, 8]")?;
        Ok(c)
    }
}

impl UserKnnConfig {
    /// The name `by_name` reads back.
    pub fn model_name(&self) -> String {
        let d = UserKnnConfig::builder().0;
        let mut name = "userknn".to_string();
        if self.neighbours != d.neighbours {
            name += &format!(":k={}", self.neighbours);
        }
        if self.shrink != d.shrink {
            name += &format!(":shrink={}", self.shrink);
        }
        if self.exponent != d.exponent {
            name += &format!(":exp={}", self.exponent);
        }
        name
    }
}

/// Fitted user-kNN: the training users' items and, per item, its users.
#[derive(Debug, Clone)]
pub struct UserKnn {
    config: UserKnnConfig,
    /// User × item.
    users: CsrMatrix,
    /// Item × user.
    by_item: CsrMatrix,
    /// Euclidean norm of each user's row.
    norms: Vec<f32>,
}

impl UserKnn {
    fn new(config: UserKnnConfig, users: CsrMatrix) -> UserKnn {
        let by_item = users.transpose();
        let norms =
            (0..users.n_rows()).map(|u| users.row_values(u).iter().map(|x| x * x).sum::<f32>().sqrt()).collect();
        UserKnn { config, users, by_item, norms }
    }

    pub(crate) fn load(r: &ArtifactReader) -> Result<UserKnn> {
        let config: UserKnnConfig = r.config()?;
        let (_, shape) = r.u32("shape")?;
        let (_, indptr) = r.u32("indptr")?;
        let (_, indices) = r.u32("indices")?;
        let (_, values) = r.f32("values")?;
        let (n_users, n_items) = match shape[..] {
            [rows, cols] => (rows as usize, cols as usize),
            _ => return Err(r.error("`shape` must be [users, items]")),
        };
        // the rows are saved in neighbour-list form (offsets, ids, values)
        let rows = unpack_lists(r, &indptr, &indices, &values)?;
        expect_len(r, "indptr", indptr.len(), n_users + 1)?;
        if rows.iter().flatten().any(|&(i, v)| i as usize >= n_items || !v.is_finite()) {
            return Err(r.error("an item id is out of range or a value is not finite"));
        }
        let triplets: Vec<(u32, u32, f32)> =
            rows.iter().enumerate().flat_map(|(u, row)| row.iter().map(move |&(i, v)| (u as u32, i, v))).collect();
        Ok(UserKnn::new(config, CsrMatrix::from_triplets(n_users, n_items, &triplets)))
    }

    /// The nearest users with items in `items`, best first, with their similarity to
    /// `history` raised to the exponent.
    pub fn neighbours(&self, history: &History, items: &Range<ItemId>) -> Vec<(usize, f32)> {
        let norm = history.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm == 0.0 {
            return Vec::new();
        }
        let mut dot = vec![0f32; self.users.n_rows()];
        let mut touched: Vec<u32> = Vec::new();
        for &(i, w) in history.iter() {
            for (&u, &x) in self.by_item.row_indices(i as usize).iter().zip(self.by_item.row_values(i as usize)) {
                if dot[u as usize] == 0.0 {
                    touched.push(u);
                }
                dot[u as usize] += w * x;
            }
        }
        // (a zero product leaves a user untouched and may list it twice)
        touched.sort_unstable();
        touched.dedup();
        // only users who bought in the ranked shop
        touched.retain(|&u| {
            let row = self.users.row_indices(u as usize);
            let p = row.partition_point(|&j| j < items.start);
            p < row.len() && row[p] < items.end
        });
        let sim = |u: u32| dot[u as usize] / (norm * self.norms[u as usize] + self.config.shrink);
        top_k_by(touched.len(), self.config.neighbours, |k| sim(touched[k]))
            .into_iter()
            .map(|k| (touched[k] as usize, sim(touched[k]).max(0.0).powf(self.config.exponent)))
            .collect()
    }
}

impl UserKnnConfig {
    /// Keeps the training matrix.
    pub fn fit_userknn(&self, data: &TrainData) -> Result<UserKnn> {
        if data.matrix.nnz() == 0 {
            return Err(Error::BadData("user-kNN needs training interactions".into()));
        }
        Ok(UserKnn::new(self.clone(), data.matrix.clone()))
    }
}

impl Fit for UserKnnConfig {
    fn name(&self) -> String {
        self.model_name()
    }
    fn fit(&self, data: &TrainData) -> Result<Box<dyn Recommender>> {
        Ok(Box::new(self.fit_userknn(data)?))
    }
}

impl Recommender for UserKnn {
    fn name(&self) -> String {
        self.config.model_name()
    }

    fn n_items(&self) -> usize {
        self.users.n_cols()
    }

    fn score_items(&self, history: &History, items: Range<ItemId>, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        for (u, weight) in self.neighbours(history, &items) {
            let row = self.users.row_indices(u);
            let start = row.partition_point(|&j| j < items.start);
            for (&j, &x) in row[start..].iter().zip(&self.users.row_values(u)[start..]) {
                if j >= items.end {
                    break;
                }
                out[(j - items.start) as usize] += weight * x;
            }
        }
        Ok(())
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let m = &self.users;
        let indptr: Vec<u32> = m.indptr().iter().map(|&p| p as u32).collect();
        if m.nnz() > u32::MAX as usize || m.n_rows() > u32::MAX as usize {
            return Err(Error::BadData("user-kNN cannot save more than 2^32 interactions".into()));
        }
        ArtifactWriter::new(KIND, &self.config)?
            .u32("shape", &[2], &[m.n_rows() as u32, m.n_cols() as u32])
            .u32("indptr", &[m.n_rows() + 1], &indptr)
            .u32("indices", &[m.nnz()], m.indices())
            .f32("values", &[m.nnz()], m.data())
            .write(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warmstart_core::Dataset;

    /// Two shops of 3 items each (0–2, 3–5); users who bought item 0 also bought item 3,
    /// users who bought item 1 bought item 5 (user-kNN reads the matrix alone).
    fn data() -> (Dataset, CsrMatrix) {
        let d = Dataset::default();
        let mut t = Vec::new();
        for u in 0..10u32 {
            if u < 6 {
                t.extend([(u, 0, 1.0), (u, 3, 1.0)]);
            } else {
                t.extend([(u, 1, 1.0), (u, 5, 1.0)]);
            }
        }
        // a user of item 0 alone (no item of shop b: never a neighbour for shop b)
        t.push((10, 0, 1.0));
        (d, CsrMatrix::from_triplets(11, 6, &t))
    }

    #[test]
    fn scores_a_new_shop_from_the_users_who_share_the_history() {
        let (d, m) = data();
        let fitted = UserKnnConfig::builder()
            .neighbours(4)
            .build()
            .unwrap()
            .fit_userknn(&TrainData { dataset: &d, matrix: &m, item_vectors: None })
            .unwrap();
        let mut out = vec![0f32; 3];
        fitted.score(&[(0, 1.0)], 3..6, &mut out).unwrap();
        assert!(out[0] > 0.0 && out[2] == 0.0 && out[1] == 0.0, "{out:?}");
        let near = fitted.neighbours(&[(0, 1.0)], &(3..6));
        assert_eq!(near.len(), 4);
        assert!(near.iter().all(|&(u, _)| u < 6), "only users with items in shop b: {near:?}");
        fitted.score(&[(1, 1.0)], 3..6, &mut out).unwrap();
        assert!(out[2] > 0.0 && out[0] == 0.0);
        // saved and loaded: the same scores
        let dir = tempfile::tempdir().unwrap();
        fitted.save(dir.path()).unwrap();
        let back = crate::load(dir.path(), None).unwrap();
        let mut again = vec![0f32; 3];
        back.score(&[(1, 1.0)], 3..6, &mut again).unwrap();
        assert_eq!(again, out);
        assert_eq!(back.name(), "userknn:k=4");
        // an unknown item is an error, an empty history scores nothing
        assert!(fitted.score(&[(9, 1.0)], 3..6, &mut out).is_err());
        fitted.score(&[], 3..6, &mut out).unwrap();
        assert_eq!(out, [0.0; 3]);
        // a zero-weight history item counts each neighbour once
        let once = fitted.neighbours(&[(0, 0.0), (0, 1.0)], &(3..6));
        let mut users: Vec<usize> = once.iter().map(|n| n.0).collect();
        users.dedup();
        assert_eq!(users.len(), once.len());
        assert!(UserKnnConfig::builder().exponent(0.0).build().is_err());
    }
}
