//! GraphSAGE's training: the graph and epoch plans prepared, the loop with early stopping,
//! and the export of exact epochs for a side-by-side run.

use super::*;

impl GraphSageConfig {
    /// Trains (early stopping on held-out cross-site users), calling `on_epoch` after every
    /// epoch and `on_progress(stage, done, total)` while building the graph.
    pub fn fit_with(
        &self,
        data: &TrainData,
        on_epoch: &mut dyn FnMut(&GraphSageEpoch),
        on_progress: &mut dyn FnMut(&str, usize, usize),
    ) -> Result<GraphSage> {
        let d = data.dataset;
        let m = data.matrix;
        let c = self.clone();
        let Prepared { mut rng, validation, skip, train_users, content_edges, shape, logq } =
            self.prepare(data, on_progress)?;
        let base = ProductGraph::build(m, &content_edges, c.content_weight, &skip, &HashSet::new());
        let content = match data.item_vectors {
            Some(v) if v.dim > 0 => {
                if v.n_items() != d.n_items() {
                    return Err(Error::BadData(format!("{} item vectors for {} items", v.n_items(), d.n_items())));
                }
                v.data.clone()
            }
            _ => Vec::new(),
        };
        let mut varmap = seeded_varmap(&shape.specs(), c.seed, &[("scale", INITIAL_SCALE)])?;
        if let Some(path) = &c.init {
            varmap.load(path).map_err(|e| Error::BadData(format!("graphsage init weights {path}: {e}")))?;
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = shape.build(&vb).map_err(candle)?;
        let empty = Cache { item_layers: Vec::new(), item_out: Vec::new() };
        let mut model = GraphSage {
            config: c.clone(),
            trained: Trained { shape, net, varmap, content, cache: empty, history: Vec::new() },
        };
        let mut opt = FusedAdamW::new(
            model.trained.varmap.all_vars(),
            candle_nn::ParamsAdamW { lr: c.learning_rate, weight_decay: c.weight_decay, ..Default::default() },
        )
        .map_err(candle)?;
        let mut stopping = EarlyStopping::new(c.patience);
        let mut history = Vec::new();
        for epoch in 0..c.epochs {
            let started = std::time::Instant::now();
            let (plan, sampler_seed) = self.next_epoch(data, &train_users, &mut rng);
            let graph = ProductGraph::build(m, &content_edges, c.content_weight, &skip, &plan.hidden);
            let t = &model.trained;
            let raw = t.shape.raw_rows(&t.content, &graph);
            let (mut sum, mut count) = (0.0f64, 0usize);
            // a sampler thread prepares the next batches while this one trains
            std::thread::scope(|scope| -> Result<()> {
                let (sender, batches) = std::sync::mpsc::sync_channel::<BatchInputs>(2);
                let (this, graph, raw, links) = (&model, &graph, &raw, &plan.links);
                scope.spawn(move || {
                    let mut sampler = Rng::new(sampler_seed);
                    for batch in links.chunks(c.batch).filter(|b| b.len() >= 2) {
                        let prepared = this.prepare_batch(graph, raw, &t.shape, data, batch, &mut sampler);
                        if sender.send(prepared).is_err() {
                            break; // training stopped
                        }
                    }
                });
                for batch in batches {
                    let loss = model.batch_loss(t, batch, &logq).map_err(candle)?;
                    opt.backward_step(&loss).map_err(candle)?;
                    let l = loss.to_scalar::<f32>().map_err(candle)? as f64;
                    if !l.is_finite() {
                        return Err(Error::BadData(format!("GraphSAGE training diverged in epoch {}", epoch + 1)));
                    }
                    sum += l;
                    count += 1;
                }
                Ok(())
            })?;
            let train_seconds = started.elapsed().as_secs_f64();
            let ndcg = if validation.is_empty() {
                None
            } else {
                model.refresh(&base)?;
                Some(crate::cold_start_ndcg(&model, data, &validation, c.seed)?)
            };
            let report = GraphSageEpoch {
                epoch: epoch + 1,
                loss: sum / count.max(1) as f64,
                validation_ndcg: ndcg,
                train_seconds,
                examples: plan.links.len(),
            };
            if stopping.end_epoch(report, &mut history, on_epoch, &model.trained.varmap)? {
                break;
            }
        }
        stopping.restore_best(&model.trained.varmap)?;
        model.trained.history = history;
        // inference graph: every training edge (validation users stay out)
        model.refresh(&base)?;
        Ok(model)
    }

    /// Users, validation split, content edges, shape and logQ; the generator is left where
    /// the first epoch starts.
    pub(super) fn prepare(
        &self,
        data: &TrainData,
        on_progress: &mut dyn FnMut(&str, usize, usize),
    ) -> Result<Prepared> {
        let d = data.dataset;
        let m = data.matrix;
        let c = self;
        if m.n_cols() != d.n_items() {
            return Err(Error::BadData(format!("matrix has {} columns for {} products", m.n_cols(), d.n_items())));
        }
        let mut rng = Rng::new(c.seed ^ 0x5a9e);
        let content_dim = data.item_vectors.map(|v| v.dim).unwrap_or(0);
        let id_embedding = c.id_embedding.unwrap_or(content_dim == 0);
        // users: cross-shop ones can validate; the rest train
        let mut cross: Vec<usize> = (0..m.n_rows())
            .filter(|&u| {
                let cols = m.row_indices(u);
                cols.iter().any(|x| d.site_of(*x) != d.site_of(cols[0]))
            })
            .collect();
        rng.shuffle(&mut cross);
        let n_val = ((cross.len() as f64) * c.validation_share).round() as usize;
        let validation: Vec<usize> = cross[..n_val].to_vec();
        let mut skip = vec![false; m.n_rows()];
        for &u in &validation {
            skip[u] = true;
        }
        let train_users: Vec<usize> = (0..m.n_rows()).filter(|u| !skip[*u] && m.row_nnz(*u) >= 2).collect();
        if train_users.is_empty() {
            return Err(Error::BadData("no user with two or more interactions to train GraphSAGE".into()));
        }
        let content_edges = match data.item_vectors {
            Some(v) if v.dim > 0 && c.content_k > 0 => {
                content_knn(v, c.content_k, 0.0, |done, total| on_progress("content neighbours", done, total))?
            }
            _ => Vec::new(),
        };
        let mut counts = vec![0f32; d.n_items()];
        for &i in m.indices() {
            counts[i as usize] += 1.0;
        }
        let shape = Shape {
            config: c.clone(),
            n_items: d.n_items(),
            n_sites: d.sites.len(),
            content_dim,
            id_embedding,
            site: d.products.iter().map(|p| p.site).collect(),
            popularity: counts.iter().map(|x| ((x + 1.0).log2() as u32).min(POPULARITY_BUCKETS as u32 - 1)).collect(),
        };
        // log sampling probability of each product as a positive (softmax's logQ)
        let total: f32 = counts.iter().sum::<f32>().max(1.0);
        let logq: Vec<f32> = counts.iter().map(|x| ((x + 1e-3) / total).ln()).collect();
        Ok(Prepared { rng, validation, skip, train_users, content_edges, shape, logq })
    }

    /// The first `epochs` epochs' training data as [`fit`](Recommender::fit) would see them
    /// (without early stopping), for re-implementations (the PyTorch Geometric comparison in
    /// `scripts/graphsage_pyg.py`).
    pub fn export(&self, data: &TrainData, epochs: usize) -> Result<GraphSageExport> {
        let Prepared { mut rng, skip, train_users, content_edges, shape, logq, .. } =
            self.prepare(data, &mut |_, _, _| {})?;
        let epochs = (0..epochs.max(1))
            .map(|_| {
                let (plan, _) = self.next_epoch(data, &train_users, &mut rng);
                let graph = ProductGraph::build(data.matrix, &content_edges, self.content_weight, &skip, &plan.hidden);
                let (offsets, neighbours, weights) = graph.csr();
                EpochGraph {
                    offsets: offsets.to_vec(),
                    neighbours: neighbours.to_vec(),
                    weights: weights.to_vec(),
                    links: plan.links,
                }
            })
            .collect();
        Ok(GraphSageExport {
            config: self.clone(),
            content: data.item_vectors.filter(|v| v.dim > 0).map(|v| v.data.clone()).unwrap_or_default(),
            content_dim: shape.content_dim,
            id_embedding: shape.id_embedding,
            n_items: shape.n_items,
            n_users: data.matrix.n_rows(),
            n_sites: shape.n_sites,
            site: shape.site,
            popularity: shape.popularity,
            epochs,
            logq,
            site_ranges: data.dataset.sites.iter().map(|s| s.items.clone()).collect(),
        })
    }
}
