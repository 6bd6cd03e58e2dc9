//! Compressed sparse row matrices for user × item data.

/// A sparse `f32` matrix in compressed sparse row form. Column indices within a row are
/// sorted and unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsrMatrix {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl CsrMatrix {
    /// Builds a matrix from `(row, col, value)` triplets; duplicates are summed.
    ///
    /// # Panics
    /// If a triplet lies outside `n_rows × n_cols` (a programming error, not user input).
    pub fn from_triplets(n_rows: usize, n_cols: usize, triplets: &[(u32, u32, f32)]) -> Self {
        let mut counts = vec![0usize; n_rows + 1];
        for &(r, c, _) in triplets {
            assert!((r as usize) < n_rows && (c as usize) < n_cols, "triplet out of bounds");
            counts[r as usize + 1] += 1;
        }
        for i in 0..n_rows {
            counts[i + 1] += counts[i];
        }
        let mut fill = counts.clone();
        let mut idx = vec![0u32; triplets.len()];
        let mut val = vec![0f32; triplets.len()];
        for &(r, c, v) in triplets {
            let p = &mut fill[r as usize];
            idx[*p] = c;
            val[*p] = v;
            *p += 1;
        }
        // sort each row and merge duplicates
        let mut indptr = Vec::with_capacity(n_rows + 1);
        indptr.push(0);
        let mut indices = Vec::with_capacity(triplets.len());
        let mut data = Vec::with_capacity(triplets.len());
        let mut row: Vec<(u32, f32)> = Vec::new();
        for r in 0..n_rows {
            row.clear();
            row.extend((counts[r]..counts[r + 1]).map(|p| (idx[p], val[p])));
            row.sort_unstable_by_key(|e| e.0);
            for &(c, v) in &row {
                if indices.len() > indptr[r] && *indices.last().unwrap() == c {
                    *data.last_mut().unwrap() += v;
                } else {
                    indices.push(c);
                    data.push(v);
                }
            }
            indptr.push(indices.len());
        }
        CsrMatrix { n_rows, n_cols, indptr, indices, data }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }
    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Column indices of row `r`.
    pub fn row_indices(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r]..self.indptr[r + 1]]
    }
    /// Values of row `r`, aligned with [`row_indices`](Self::row_indices).
    pub fn row_values(&self, r: usize) -> &[f32] {
        &self.data[self.indptr[r]..self.indptr[r + 1]]
    }
    /// Number of entries in row `r`.
    pub fn row_nnz(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }
    /// Value at `(r, c)`, zero when absent.
    pub fn get(&self, r: usize, c: u32) -> f32 {
        let idx = self.row_indices(r);
        idx.binary_search(&c).map(|p| self.row_values(r)[p]).unwrap_or(0.0)
    }
    /// Row pointer array (length `n_rows + 1`).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }
    /// All column indices.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// All values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The transpose (items × users from users × items).
    pub fn transpose(&self) -> CsrMatrix {
        let mut counts = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.n_cols {
            counts[i + 1] += counts[i];
        }
        let mut fill = counts.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        for r in 0..self.n_rows {
            for (c, v) in self.row_indices(r).iter().zip(self.row_values(r)) {
                let p = &mut fill[*c as usize];
                indices[*p] = r as u32;
                data[*p] = *v;
                *p += 1;
            }
        }
        CsrMatrix { n_rows: self.n_cols, n_cols: self.n_rows, indptr: counts, indices, data }
    }

    /// The same pattern with every stored value replaced by `f(value)`.
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> CsrMatrix {
        let mut m = self.clone();
        m.data.iter_mut().for_each(|v| *v = f(*v));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_merge_sort_and_transpose() {
        let m = CsrMatrix::from_triplets(3, 4, &[(0, 3, 1.0), (0, 1, 2.0), (2, 0, 1.0), (0, 3, 0.5)]);
        assert_eq!(m.nnz(), 3);
        assert_eq!(m.row_indices(0), &[1, 3]);
        assert_eq!(m.row_values(0), &[2.0, 1.5]);
        assert_eq!(m.row_nnz(1), 0);
        let t = m.transpose();
        assert_eq!((t.n_rows(), t.n_cols()), (4, 3));
        assert_eq!(t.get(3, 0), 1.5);
        assert_eq!(t.get(0, 2), 1.0);
        assert_eq!(t.transpose(), m);
    }
}
