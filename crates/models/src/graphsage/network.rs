//! GraphSAGE's network at work: a batch prepared on the sampler thread, its loss, the forward
//! pass over sampled blocks, full-graph inference layer by layer, and a user embedded from
//! their history.

use super::*;

impl GraphSage {
    /// Everything of one batch that needs no parameters: targets (users, positives, then
    /// same-shop negatives for BCE), the sampled blocks, the first layer's raw input rows and
    /// the id-embedding lists. Runs on the sampler thread while the previous batch trains.
    pub(super) fn prepare_batch(
        &self,
        graph: &ProductGraph,
        raw: &[f32],
        shape: &Shape,
        data: &TrainData,
        links: &[(usize, ItemId)],
        rng: &mut Rng,
    ) -> BatchInputs {
        let c = &self.config;
        let d = data.dataset;
        let n_items = graph.n_items;
        let mut targets: Vec<u32> = links.iter().map(|(u, _)| (n_items + u) as u32).collect();
        targets.extend(links.iter().map(|(_, i)| *i));
        let negatives = if c.loss == GraphSageLoss::Bce { c.negatives } else { 0 };
        for (_, i) in links {
            let range = d.sites[d.site_of(*i) as usize].items.clone();
            for _ in 0..negatives {
                targets.push(range.start + rng.below(range.len()) as u32);
            }
        }
        let blocks = sample_blocks(graph, &targets, &c.fanouts, rng);
        let r = shape.raw_width();
        let nodes = &blocks.nodes;
        let row = |v: u32| &raw[v as usize * r..(v as usize + 1) * r];
        let inputs = if c.aggregator == Aggregator::MaxPool {
            // max-pool needs every sampled node's input
            nodes.iter().flat_map(|&v| row(v).iter().copied()).collect()
        } else {
            // the first layer's destinations: [raw row | mean raw row of their neighbours]
            let first = blocks.hop_ends[c.fanouts.len() - 1];
            let lists = &blocks.adjacency[c.fanouts.len() - 1];
            let mut x = vec![0f32; first * (2 * r + 1)];
            for ((out, &v), list) in x.chunks_mut(2 * r + 1).zip(&nodes[..first]).zip(&lists[..first]) {
                let (own, agg) = out.split_at_mut(r);
                agg[r] = 1.0; // the bias column
                own.copy_from_slice(row(v));
                let total: f32 = list.iter().map(|x| x.1).sum();
                if total > 0.0 {
                    for &(p, w) in list {
                        let share = w / total;
                        for (o, x) in agg.iter_mut().zip(row(nodes[p as usize])) {
                            *o += share * x;
                        }
                    }
                }
            }
            x
        };
        let ids = shape.id_embedding.then(|| {
            // a product's own id row; a user's weighted mean over up to `user_items` products
            let mut buf = Vec::new();
            let own: Vec<Vec<(u32, f32)>> = nodes
                .iter()
                .map(|&v| {
                    if (v as usize) < n_items {
                        vec![(v, 1.0)]
                    } else {
                        graph.sample(v, c.user_items, rng, &mut buf);
                        buf.clone()
                    }
                })
                .collect();
            let own = SparseRows::means(&own);
            if c.aggregator == Aggregator::MaxPool {
                return own;
            }
            // the neighbour means of the first layer's destinations, expanded to id rows
            let first = blocks.hop_ends[c.fanouts.len() - 1];
            let mut rows = SparseRows::default();
            for v in 0..first {
                rows.push(own.row(v));
            }
            for list in &blocks.adjacency[c.fanouts.len() - 1][..first] {
                let total: f32 = list.iter().map(|x| x.1).sum();
                let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
                rows.push(list.iter().flat_map(|&(p, w)| own.row(p as usize).map(move |(i, s)| (i, w * scale * s))));
            }
            rows
        });
        let layers = c.fanouts.len();
        let keep = 1.0 - c.dropout;
        // four 16-bit draws per random word
        let threshold = (keep as f64 * 65536.0) as u64;
        let dropout = (1..layers)
            .filter(|_| c.dropout > 0.0)
            .map(|l| {
                let len = blocks.hop_ends[layers - l] * c.hidden;
                let mut mask = Vec::with_capacity(len + 3);
                while mask.len() < len {
                    let bits = rng.next_u64();
                    for k in 0..4 {
                        mask.push(if (bits >> (16 * k)) & 0xffff < threshold { 1.0 / keep } else { 0.0 });
                    }
                }
                mask.truncate(len);
                mask
            })
            .collect();
        BatchInputs { links: links.to_vec(), targets, blocks, inputs, ids, dropout }
    }

    /// The loss of one prepared batch.
    pub(super) fn batch_loss(&self, t: &Trained, batch: BatchInputs, logq: &[f32]) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let dev = &Device::Cpu;
        let z = self.forward(t, &batch.blocks, batch.inputs, batch.ids, &batch.dropout)?;
        let (links, targets, blocks) = (&batch.links, &batch.targets, &batch.blocks);
        let pos_of = |node: u32| blocks.position(node);
        let b = links.len();
        let user_rows: Vec<u32> = targets[..b].iter().map(|&v| pos_of(v)).collect();
        let pos_rows: Vec<u32> = targets[b..2 * b].iter().map(|&v| pos_of(v)).collect();
        let zu = z.index_select(&Tensor::from_vec(user_rows, b, dev)?, 0)?;
        let zp = z.index_select(&Tensor::from_vec(pos_rows, b, dev)?, 0)?;
        let scale = t.net.scale.exp()?;
        if c.loss == GraphSageLoss::Softmax {
            // every user against the batch's positives; column j's expected count is B·p_j
            let logits = zu.matmul(&zp.t()?)?.broadcast_mul(&scale)?;
            let items: Vec<ItemId> = links.iter().map(|x| x.1).collect();
            let columns: Vec<(ItemId, f32)> = items.iter().map(|&i| (i, logq[i as usize] + (b as f32).ln())).collect();
            return crate::losses::sampled_softmax(&logits, &items, &columns);
        }
        let neg_rows: Vec<u32> = targets[2 * b..].iter().map(|&v| pos_of(v)).collect();
        let zn =
            z.index_select(&Tensor::from_vec(neg_rows, b * c.negatives, dev)?, 0)?.reshape((b, c.negatives, c.dim))?;
        let pos = (zu.clone() * zp)?.sum(1)?.broadcast_mul(&scale)?;
        let neg = zn.broadcast_mul(&zu.unsqueeze(1)?)?.sum(D::Minus1)?.broadcast_mul(&scale)?;
        bce(&pos, &neg)
    }

    /// The targets' outputs (rows in node order) of a prepared batch.
    ///
    /// With the mean aggregator the first layer needs no per-node projection: the mean of
    /// linear inputs is the input of the mean raw row, and `(x W_in) W_self + (x̄ W_in) W_neigh`
    /// is one product of `[x | x̄ | 1]` with `[W_in W_self ; W_in W_neigh ; b]`, so only the first
    /// layer's destinations are multiplied, once (exact; dropout acts between layers).
    /// Max-pool projects every sampled node.
    pub(super) fn forward(
        &self,
        t: &Trained,
        blocks: &crate::graph::SampledBlocks,
        inputs: Vec<f32>,
        id_rows: Option<SparseRows>,
        dropout: &[Vec<f32>],
    ) -> candle_core::Result<Tensor> {
        let layers = self.config.fanouts.len();
        let r = t.shape.raw_width();
        let w_in = t.net.input_weight()?;
        let ids = match (&t.net.ids, id_rows) {
            (Some(table), Some(rows)) => Some(sparse_rows(table, rows)?),
            _ => None,
        };
        let dev = &Device::Cpu;
        if self.config.aggregator == Aggregator::MaxPool {
            let n = blocks.nodes.len();
            let mut h = constant_matmul(Tensor::from_vec(inputs, (n, r), dev)?, &w_in)?;
            if let Some(ids) = &ids {
                h = (h + ids)?;
            }
            return self.propagate(t, blocks, h, 0, dropout);
        }
        let first = blocks.hop_ends[layers - 1];
        let layer = &t.net.layers[0];
        let stacked =
            Tensor::cat(&[w_in.matmul(&layer.own.0)?, w_in.matmul(&layer.neigh)?, layer.own.1.unsqueeze(0)?], 0)?;
        let mut pre = constant_matmul(Tensor::from_vec(inputs, (first, 2 * r + 1), dev)?, &stacked)?;
        if let Some(ids) = &ids {
            // own id rows, then the neighbour means
            let (own, agg) = (ids.narrow(0, 0, first)?, ids.narrow(0, first, first)?);
            pre = (pre + own.matmul(&layer.own.0)? + agg.matmul(&layer.neigh)?)?;
        }
        // ReLU and the next layer's dropout in one op
        let h = if layers == 1 { l2(&pre)? } else { masked_relu(&pre, dropout.first().map(|m| m.as_slice()))? };
        self.propagate(t, blocks, h, 1, dropout)
    }

    /// Runs layers `from..` over sampled blocks (dropout before every layer after the first
    /// when training); returns the targets' outputs (rows in node order).
    pub(super) fn propagate(
        &self,
        t: &Trained,
        blocks: &crate::graph::SampledBlocks,
        mut h: Tensor,
        from: usize,
        dropout: &[Vec<f32>],
    ) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let layers = c.fanouts.len();
        for (l, layer) in t.net.layers.iter().enumerate().skip(from) {
            let hop = layers - 1 - l;
            let n_dst = blocks.hop_ends[hop];
            // (the first layer of the mean path applied its dropout with its ReLU)
            if l > from && c.dropout > 0.0 {
                h = (h * Tensor::from_slice(&dropout[l - 1], (blocks.hop_ends[hop + 1], c.hidden), &Device::Cpu)?)?;
            }
            let agg = Self::aggregate(layer, &h, &blocks.adjacency[hop][..n_dst])?;
            let own = h.narrow(0, 0, n_dst)?;
            h = Self::combine(layer, &own, &agg, l + 1 == layers)?;
        }
        Ok(h)
    }

    /// Full-graph, full-neighbourhood inference: every product's representation at every
    /// layer input and its final embedding.
    pub(super) fn infer(&self, t: &Trained, graph: &ProductGraph) -> candle_core::Result<Cache> {
        let n = graph.n_nodes();
        let n_items = graph.n_items;
        let hsize = self.config.hidden;
        // layer 0: products, then users from all their products
        let mut x_items = Vec::with_capacity(n_items * hsize);
        let all: Vec<u32> = (0..n_items as u32).collect();
        for chunk in all.chunks(4096) {
            x_items.extend(Self::item_inputs(t, chunk)?.flatten_all()?.to_vec1::<f32>()?);
        }
        let bias = t.net.user_bias.to_vec1::<f32>()?;
        let mut h = x_items.clone();
        h.resize(n * hsize, 0.0);
        for u in 0..graph.n_users {
            let (nb, w) = graph.neighbours((n_items + u) as u32);
            let row = weighted_mean(&x_items, hsize, nb, w);
            let out = &mut h[(n_items + u) * hsize..(n_items + u + 1) * hsize];
            for ((o, r), b) in out.iter_mut().zip(&row).zip(&bias) {
                *o = r + b;
            }
        }
        let mut item_layers = vec![h[..n_items * hsize].to_vec()];
        let layers = t.net.layers.len();
        let dev = &Device::Cpu;
        for (l, layer) in t.net.layers.iter().enumerate() {
            let width = h.len() / n;
            let src = Tensor::from_vec(h.clone(), (n, width), dev)?;
            // aggregate over full neighbourhoods
            let pooled: Vec<f32> = match &layer.pool {
                None => h.clone(),
                Some(pool) => dense(&src, pool)?.relu()?.flatten_all()?.to_vec1::<f32>()?,
            };
            let mut agg = vec![0f32; n * width];
            for v in 0..n {
                let (nb, w) = graph.neighbours(v as u32);
                let row = match layer.pool {
                    None => weighted_mean(&pooled, width, nb, w),
                    Some(_) => max_rows(&pooled, width, nb),
                };
                agg[v * width..(v + 1) * width].copy_from_slice(&row);
            }
            let agg = Tensor::from_vec(agg, (n, width), dev)?;
            let out = Self::combine(layer, &src, &agg, l + 1 == layers)?;
            h = out.flatten_all()?.to_vec1::<f32>()?;
            let out_width = h.len() / n;
            if l + 1 < layers {
                item_layers.push(h[..n_items * out_width].to_vec());
            }
        }
        let out_width = h.len() / n;
        Ok(Cache { item_layers, item_out: h[..n_items * out_width].to_vec() })
    }

    /// The embedding of a user known by `history` (products and weights), from the cache.
    pub(super) fn embed_user(&self, t: &Trained, history: &[(ItemId, f32)]) -> candle_core::Result<Vec<f32>> {
        let dev = &Device::Cpu;
        let nb: Vec<u32> = history.iter().map(|x| x.0).collect();
        let w: Vec<f32> = history.iter().map(|x| x.1).collect();
        let hsize = self.config.hidden;
        let bias = t.net.user_bias.to_vec1::<f32>()?;
        let mut user: Vec<f32> =
            weighted_mean(&t.cache.item_layers[0], hsize, &nb, &w).iter().zip(&bias).map(|(a, b)| a + b).collect();
        let layers = t.net.layers.len();
        for (l, layer) in t.net.layers.iter().enumerate() {
            let items = &t.cache.item_layers[l];
            let width = user.len();
            let agg = match &layer.pool {
                None => weighted_mean(items, width, &nb, &w),
                Some(pool) => {
                    let rows: Vec<f32> =
                        nb.iter().flat_map(|&i| items[i as usize * width..(i as usize + 1) * width].to_vec()).collect();
                    let p = dense(&Tensor::from_vec(rows, (nb.len(), width), dev)?, pool)?.relu()?;
                    p.max(0)?.to_vec1::<f32>()?
                }
            };
            let own = Tensor::from_vec(user, (1, width), dev)?;
            let agg = Tensor::from_vec(agg, (1, width), dev)?;
            user = Self::combine(layer, &own, &agg, l + 1 == layers)?.flatten_all()?.to_vec1::<f32>()?;
        }
        Ok(user)
    }
}

/// Edge-weighted mean of the rows `nb` of `table` (`width` columns); zeros without rows.
pub(super) fn weighted_mean(table: &[f32], width: usize, nb: &[u32], w: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; width];
    weighted_mean_into(table, width, nb, w, &mut out);
    out
}

/// [`weighted_mean`] written into `out` (which must hold zeros).
pub(super) fn weighted_mean_into(table: &[f32], width: usize, nb: &[u32], w: &[f32], out: &mut [f32]) {
    let total: f32 = w.iter().sum();
    if nb.is_empty() || total <= 0.0 {
        return;
    }
    for (&i, &wt) in nb.iter().zip(w) {
        for (o, x) in out.iter_mut().zip(&table[i as usize * width..(i as usize + 1) * width]) {
            *o += wt / total * x;
        }
    }
}

/// Neighbour lists as padded `n × f` positions and weights (0 for padding), with `f` the
/// longest list.
pub(super) fn padded(lists: &[Vec<(u32, f32)>]) -> (Vec<u32>, Vec<f32>, usize) {
    let n = lists.len();
    let f = lists.iter().map(|x| x.len()).max().unwrap_or(0);
    let mut idx = vec![0u32; n * f];
    let mut w = vec![0f32; n * f];
    for (v, list) in lists.iter().enumerate() {
        for (j, (p, wt)) in list.iter().enumerate() {
            idx[v * f + j] = *p;
            w[v * f + j] = *wt;
        }
    }
    (idx, w, f)
}

/// Element-wise max of the rows `nb` of `table`; zeros without rows.
pub(super) fn max_rows(table: &[f32], width: usize, nb: &[u32]) -> Vec<f32> {
    if nb.is_empty() {
        return vec![0f32; width];
    }
    let mut out = vec![f32::NEG_INFINITY; width];
    for &i in nb {
        for (o, x) in out.iter_mut().zip(&table[i as usize * width..(i as usize + 1) * width]) {
            *o = o.max(*x);
        }
    }
    out
}
