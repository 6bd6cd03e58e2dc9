//! Which content vectors content models read: one stored model (`minilm`, `clip/image`, …)
//! or a fusion of a text and an image model, `TEXT+IMAGE[:w]` with text weight `w`
//! (default 0.5: plain concatenation), e.g. `minilm+clip/image:0.7`.

use warmstart_core::{Dataset, ItemVectors};
use warmstart_store::Store;

use crate::{Error, Result};

/// The text encoder whose vectors content models use by default.
pub const CONTENT_ENCODER: &str = "minilm";

/// A parsed `--vectors` value.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorSpec {
    /// One stored model.
    Single(String),
    /// Text and image vectors fused with a text weight.
    Fused {
        /// Text model id.
        text: String,
        /// Image model id.
        image: String,
        /// Weight of the text part's cosine.
        text_weight: f32,
    },
}

impl std::fmt::Display for VectorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorSpec::Single(m) => write!(f, "{m}"),
            VectorSpec::Fused { text, image, text_weight } => write!(f, "{text}+{image}:{text_weight}"),
        }
    }
}

impl std::str::FromStr for VectorSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<VectorSpec> {
        let s = s.trim();
        let bad = |reason: String| Error::bad("vectors", reason);
        if s.is_empty() {
            return Err(bad("empty".into()));
        }
        let Some((text, rest)) = s.split_once('+') else { return Ok(VectorSpec::Single(s.to_string())) };
        let (image, w) = match rest.rsplit_once(':') {
            Some((img, w)) => {
                let w: f32 = w.parse().map_err(|_| bad(format!("{s}: weight `{w}` is not a number")))?;
                (img, w)
            }
            None => (rest, 0.5),
        };
        if !(0.0..=1.0).contains(&w) {
            return Err(bad(format!("{s}: the text weight must be in [0, 1]")));
        }
        if text.is_empty() || image.is_empty() {
            return Err(bad(format!("{s}: expected TEXT+IMAGE[:w]")));
        }
        Ok(VectorSpec::Fused { text: text.to_string(), image: image.to_string(), text_weight: w })
    }
}

impl VectorSpec {
    /// The model whose text tower embeds a product's text into this space (the text part of
    /// a fusion).
    pub fn text_model(&self) -> &str {
        match self {
            VectorSpec::Single(m) => m,
            VectorSpec::Fused { text, .. } => text,
        }
    }
}

/// One stored vector set, failing clearly when it was never computed.
pub fn load_one(store: &Store, model: &str, dataset: &str, d: &Dataset) -> Result<ItemVectors> {
    let v = store.load_item_vectors(model, Some(dataset))?;
    if v.count_present() == 0 {
        return Err(Error::NotFound {
            what: "vectors",
            key: format!(
                "{model} for {dataset} (run `warmstart embed --dataset {dataset} --model {}` first)",
                model.split('/').next().unwrap_or(model)
            ),
        });
    }
    if v.n_items() != d.n_items() {
        return Err(Error::bad("vectors", format!("vectors cover {} items, dataset has {}", v.n_items(), d.n_items())));
    }
    Ok(v)
}

/// Loads (and fuses) the dataset's item vectors, failing clearly when they were never
/// computed. A fusion's counts (both parts, one, neither) go to `report`.
pub fn load_vectors(
    store: &Store,
    dataset: &str,
    d: &Dataset,
    spec: &VectorSpec,
    report: &mut dyn FnMut(&str),
) -> Result<ItemVectors> {
    match spec {
        VectorSpec::Single(m) => load_one(store, m, dataset, d),
        VectorSpec::Fused { text, image, text_weight } => {
            let t = store.load_item_vectors(text, Some(dataset))?;
            let i = store.load_item_vectors(image, Some(dataset))?;
            if t.count_present() + i.count_present() == 0 {
                return Err(Error::NotFound {
                    what: "vectors",
                    key: format!("{text} or {image} for {dataset} (run `warmstart embed` first)"),
                });
            }
            // a model without any stored vector has dimension 0 and adds no columns
            let fused = warmstart_embed::fuse(&t, &i, *text_weight)?;
            report(&format!(
                "fused {text}+{image} (text weight {text_weight}): {} both, {} text only, {} image only, {} neither",
                fused.report.both, fused.report.text_only, fused.report.image_only, fused.report.neither
            ));
            Ok(fused.vectors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_fused_specs() {
        assert_eq!("minilm".parse::<VectorSpec>().unwrap(), VectorSpec::Single("minilm".into()));
        assert_eq!(
            "minilm+clip/image:0.7".parse::<VectorSpec>().unwrap(),
            VectorSpec::Fused { text: "minilm".into(), image: "clip/image".into(), text_weight: 0.7 }
        );
        assert_eq!(
            "clip/text+clip/image".parse::<VectorSpec>().unwrap(),
            VectorSpec::Fused { text: "clip/text".into(), image: "clip/image".into(), text_weight: 0.5 }
        );
        assert!("minilm+clip/image:2".parse::<VectorSpec>().is_err());
        assert!("minilm+clip/image:x".parse::<VectorSpec>().is_err());
        assert!("+clip/image".parse::<VectorSpec>().is_err());
        let spec: VectorSpec = "minilm+clip/image:0.7".parse().unwrap();
        assert_eq!(spec.to_string().parse::<VectorSpec>().unwrap(), spec);
    }
}
