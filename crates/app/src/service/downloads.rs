//! What the service hands out whole: a site's content vectors, its public catalog and a
//! model's neighbour lists (the browser extension's downloads), with their ETags.

use super::*;

impl Service {
    /// `GET /v1/sites/{site}/vectors`: the site's live product ids and content vectors in the
    /// compact binary form below, and its ETag (changes with the catalog).
    ///
    /// ```text
    /// "WSVEC001"  u32 dim  u32 n  u32 dtype (0 f32, 1 f16)  u32 ids_len
    /// ids: ids_len bytes of UTF-8, one id per line; zero padding to 4 bytes
    /// n × dim vectors (little endian), then n f32 popularity priors in [0, 1]
    /// ```
    pub fn site_vectors(&self, site: &str, f16: bool, known: Option<&str>) -> Result<Download> {
        let (g, s) = self.site(site, "site")?;
        let c = self.groups[g].catalog.read().map_err(|_| poisoned())?;
        if c.dim() == 0 {
            return Err(Error::NotFound { what: "content vectors", key: site.to_string() });
        }
        let etag = format!("\"{}-{}-{}\"", artifact::slug(&c.dataset), c.version(), if f16 { "f16" } else { "f32" });
        Download::build(etag, known, || {
            let (keys, data) = site_vectors(&c, s);
            let counts: Vec<f32> = keys.iter().map(|&i| c.popularity(i)).collect();
            let payload = warmstart_scoring::SiteVectors {
                dim: c.dim(),
                ids: keys.iter().map(|&i| c.product(i).external_id.clone()).collect(),
                data,
                prior: warmstart_scoring::log_popularity(&counts),
            };
            Ok(payload.encode(f16))
        })
    }

    /// `GET /v1/sites/{site}/catalog`: the site's live products with a vector (the rows of
    /// [`site_vectors`](Self::site_vectors), in order), their public metadata and links, as
    /// JSON ([`PublicCatalog`]), with an ETag of the same catalog version.
    pub fn site_catalog(&self, site: &str, known: Option<&str>) -> Result<Download> {
        let (g, s) = self.site(site, "site")?;
        let c = self.groups[g].catalog.read().map_err(|_| poisoned())?;
        if c.dim() == 0 {
            return Err(Error::NotFound { what: "content vectors", key: site.to_string() });
        }
        let etag = format!("\"{}-{}-catalog\"", artifact::slug(&c.dataset), c.version());
        Download::build(etag, known, || {
            let (keys, _) = site_vectors(&c, s);
            let links = &self.opts.links;
            let products = keys
                .iter()
                .map(|&i| {
                    let p = c.product(i);
                    PublicProduct {
                        id: p.external_id.clone(),
                        title: p.title.clone(),
                        brand: p.brand.clone(),
                        category: p.category.clone(),
                        price_usd: p.price_usd,
                        url: links.page(site, &p.external_id),
                        image: links.image(site, &p.external_id, p.image.as_deref()),
                    }
                })
                .collect();
            serde_json::to_vec(&PublicCatalog { site: site.to_string(), products })
                .map_err(|e| Error::Artifact { path: "catalog".into(), reason: e.to_string() })
        })
    }

    /// `GET /v1/sites/{site}/neighbours?model=…`: a neighbour-list model's (item-kNN,
    /// RP3beta) lists for ranking `site` on a device: every product of the group's other
    /// shops that the model knows, with its neighbours among `site`'s live products. The
    /// lists of every other shop come down together, so the request says nothing about
    /// which shops the user knows. ETag: model version and catalog version.
    pub fn site_neighbours(&self, site: &str, model: &str, known: Option<&str>) -> Result<Download> {
        let (g, s) = self.site(site, "site")?;
        let group = &self.groups[g];
        let served = {
            let models = group.models.read().map_err(|_| poisoned())?;
            models.iter().find(|m| m.name() == model).cloned()
        }
        .ok_or_else(|| Error::NotFound { what: "model", key: model.to_string() })?;
        let lists = served.model.neighbour_lists().ok_or_else(|| {
            Error::bad("model", format!("`{model}` has no neighbour lists (item-kNN and RP3beta have)"))
        })?;
        let c = group.catalog.read().map_err(|_| poisoned())?;
        let etag = format!(
            "\"{}-{}-{}-{}-nbr\"",
            artifact::slug(&c.dataset),
            model,
            served.artifact.manifest.version,
            c.version()
        );
        Download::build(etag, known, || {
            // targets: the site's live products the model knows, in catalog order (as it ranks them)
            let targets: Vec<ItemId> =
                c.live_items(s).iter().copied().filter(|&i| served.ids.model_id(i).is_some()).collect();
            let row_of: HashMap<u32, u32> = targets
                .iter()
                .enumerate()
                .filter_map(|(r, &i)| served.ids.model_id(i).map(|m| (m, r as u32)))
                .collect();
            let mut out = warmstart_scoring::NeighbourLists {
                targets: targets.iter().map(|&i| c.product(i).external_id.clone()).collect(),
                sources: Vec::new(),
                lists: Vec::new(),
            };
            for (m, list) in lists.iter().enumerate() {
                let Some(i) = served.ids.catalog_id(m as u32) else { continue };
                let source_site = c.product(i).site;
                if source_site == s || c.item(source_site, &c.product(i).external_id).is_none() {
                    continue;
                }
                let l: Vec<(u32, f32)> =
                    list.iter().filter_map(|&(j, sim)| row_of.get(&j).map(|&r| (r, sim))).collect();
                if !l.is_empty() {
                    out.sources.push((c.site_key(source_site).to_string(), c.product(i).external_id.clone()));
                    out.lists.push(l);
                }
            }
            Ok(out.encode())
        })
    }
}
