//! Catalog changes through the service: products upserted (stored, embedded, served and
//! searchable at once) and removed.

use super::*;

impl Service {
    /// `PUT /v1/sites/{site}/products`: products written to the store in one transaction,
    /// embedded with the catalog's encoder, and served (and searchable) at once.
    pub fn upsert(&self, site: &str, req: &UpsertRequest) -> Result<CatalogChange> {
        let (gi, s) = self.site(site, "site")?;
        let g = &self.groups[gi];
        if req.products.is_empty() || req.products.len() > self.opts.max_products {
            return Err(Error::bad("products", format!("1–{} products", self.opts.max_products)));
        }
        let products = req
            .products
            .iter()
            .enumerate()
            .map(|(n, p)| normalize_product(site, p, &format!("products[{n}]")))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = products.iter().find(|p| !seen.insert(p.external_id.as_str())) {
            return Err(Error::bad("products", format!("product `{}` is given twice", dup.external_id)));
        }
        // embed first: a failure changes nothing
        let vectors = if g.space.is_some() {
            let inputs: Vec<&ProductInput> = req.products.iter().collect();
            Some(self.embed_inputs(g, &inputs)?)
        } else {
            None
        };
        let ids: Vec<String> = products.iter().map(|p| p.external_id.clone()).collect();
        // held until the catalog has the change, so the catalog sync cannot apply it first
        // (which would count this request's inserts as updates)
        let _sync = self.synced.lock().map_err(|_| poisoned())?;
        {
            let mut store = self.store.lock().map_err(|_| poisoned())?;
            let site_info = {
                let c = g.catalog.read().map_err(|_| poisoned())?;
                warmstart_core::Site {
                    key: site.to_string(),
                    name: c.sites[s as usize].1.clone(),
                    dataset: c.dataset.clone(),
                }
            };
            store.write(
                "api",
                &[site_info],
                &products,
                &[],
                "{\"source\":\"PUT /v1/sites/{site}/products\"}",
                &|_| {},
            )?;
            store.restore_products(site, &ids)?;
            if let (Some(VectorSpec::Single(model)), Some(vs)) = (&g.space, &vectors) {
                let rows = store.product_rows(site, &ids)?;
                let put: Vec<(i64, String, Vec<f32>)> =
                    rows.into_iter().zip(vs).filter_map(|(r, v)| r.map(|(id, hash)| (id, hash, v.clone()))).collect();
                store.put_embeddings(model, &put, warmstart_store::VectorDtype::F32)?;
            }
        }
        let mut change = CatalogChange { embedded: vectors.as_ref().map(Vec::len).unwrap_or(0), ..Default::default() };
        let mut c = g.catalog.write().map_err(|_| poisoned())?;
        let mut index = g.content_index.write().map_err(|_| poisoned())?;
        for (n, p) in products.iter().enumerate() {
            let v = vectors.as_ref().map(|vs| vs[n].clone());
            let (id, created) = c.upsert(s, warmstart_core::ProductMeta::of(s, p), v.clone())?;
            if created {
                change.inserted += 1;
            } else {
                change.updated += 1;
            }
            if let (Some(v), Some(ix)) = (v, index.get_mut(&s)) {
                ix.upsert(id, &v)?;
            }
        }
        Ok(change)
    }

    /// `DELETE /v1/sites/{site}/products`: products taken off the served catalog (kept in the
    /// store with their interactions).
    pub fn remove(&self, site: &str, ids: &[String]) -> Result<CatalogChange> {
        let (gi, s) = self.site(site, "site")?;
        let g = &self.groups[gi];
        if ids.is_empty() || ids.len() > self.opts.max_products {
            return Err(Error::bad("ids", format!("1–{} ids", self.opts.max_products)));
        }
        let _sync = self.synced.lock().map_err(|_| poisoned())?;
        self.store.lock().map_err(|_| poisoned())?.remove_products(site, ids)?;
        let mut c = g.catalog.write().map_err(|_| poisoned())?;
        let mut index = g.content_index.write().map_err(|_| poisoned())?;
        let mut change = CatalogChange::default();
        for id in ids {
            match c.remove(s, id) {
                Some(i) => {
                    change.removed += 1;
                    if let Some(ix) = index.get_mut(&s) {
                        ix.remove(i);
                    }
                }
                None => change.not_found += 1,
            }
        }
        Ok(change)
    }
}
