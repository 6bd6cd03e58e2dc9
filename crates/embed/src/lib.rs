//! Content embeddings on `candle`: sentence encoders (BERT family in Hugging Face format,
//! e.g. all-MiniLM-L6-v2), CLIP text and image towers, fusion of text and image vectors,
//! the product text the encoders read, and fetching models.
//!
//! Encoders implement [`TextEncoder`] and/or [`ImageEncoder`], so another image model (one
//! trained on the catalog, say) plugs into the same pipeline.

pub mod bert;
pub mod clip;
pub mod dual;
pub mod fetch;
pub mod fusion;
pub mod hog;
pub mod parallel;
pub mod preprocess;
pub mod text;
pub mod texture;

pub use clip::{write_random_checkpoint, ClipEncoder, ClipShape};
pub use dual::{DualConfig, DualEncoder, DualTrainer, PairSet, Retrieval, TowerKind, TrainOptions, TrainReport};
pub use fusion::{fuse, Fused, FusionReport, Parts};
pub use preprocess::ImagePreprocess;
pub use text::{product_text, EncodeStats, SentenceEncoder};
pub use texture::{TextureEncoder, TextureFeatures};

use std::path::{Path, PathBuf};

/// Errors of the embed crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is missing or unreadable.
    #[error("model file {path}: {message}")]
    ModelFile {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint lacks a tensor or has one of the wrong shape.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// Weights file.
        path: PathBuf,
        /// Which tensor and why.
        message: String,
    },
    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An image could not be decoded or has the wrong size.
    #[error("image: {0}")]
    Image(String),
    /// Vectors cannot be fused.
    #[error("fusion: {0}")]
    Fusion(String),
    /// The tensor library failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Fetching a model failed.
    #[error("fetching {model}: {message}")]
    Fetch {
        /// Model name.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// Unknown model name.
    #[error("unknown model `{0}` (known: {known}, or a model trained with `warmstart train image-encoder`)", known = fetch::MODELS.join(", "))]
    UnknownModel(String),
    /// Invalid model or training settings.
    #[error("invalid settings: {0}")]
    Config(String),
    /// The model has no tower for this input.
    #[error("model `{0}` has no {1} encoder")]
    NoTower(String, &'static str),
}

/// Result alias for the embed crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Encodes texts into L2-normalised vectors.
pub trait TextEncoder: Send + Sync {
    /// Id of the vectors in the store (e.g. `minilm`, `clip/text`).
    fn id(&self) -> String;
    /// Output dimension.
    fn dim(&self) -> usize;
    /// Token window; longer texts are cut and counted.
    fn max_len(&self) -> usize;
    /// Encodes `texts` (row-major `texts.len() × dim`).
    fn encode_texts(&self, texts: &[&str]) -> Result<(Vec<f32>, EncodeStats)>;
}

/// Encodes decoded images into L2-normalised vectors.
pub trait ImageEncoder: Send + Sync {
    /// Id of the vectors in the store (e.g. `clip/image`).
    fn id(&self) -> String;
    /// Output dimension.
    fn dim(&self) -> usize;
    /// Encodes `images` (row-major `images.len() × dim`).
    fn encode_images(&self, images: &[::image::DynamicImage]) -> Result<Vec<f32>>;
}

/// A loaded model: a text tower, an image tower, or both.
pub enum LoadedModel {
    /// A sentence encoder (text only).
    Sentence(Box<SentenceEncoder>),
    /// CLIP (text and image).
    Clip(Box<ClipEncoder>),
    /// A dual encoder trained on the catalog (image tower; text head over its text model).
    Dual(Box<DualEncoder>),
    /// Handcrafted colour and texture features (image only).
    Texture(TextureEncoder),
}

impl LoadedModel {
    /// Loads a model by name from `$WARMSTART_HOME/models` (fetching it when needed);
    /// `texture` needs no files.
    pub fn load(home: &Path, name: &str) -> Result<LoadedModel> {
        if name == fetch::TEXTURE {
            return Ok(LoadedModel::Texture(TextureEncoder::default()));
        }
        let dir = fetch::ensure(home, name)?;
        LoadedModel::load_dir(&dir, name, home)
    }

    /// Loads the model in `dir`, its kind told by its `config.json` (`model_type`); `home`
    /// holds the text model a dual encoder builds on.
    pub fn load_dir(dir: &Path, name: &str, home: &Path) -> Result<LoadedModel> {
        let cfg = read_json(&dir.join("config.json"))?;
        if cfg["model_type"].as_str() == Some(dual::MODEL_TYPE) {
            Ok(LoadedModel::Dual(Box::new(DualEncoder::load(dir, name, home, true)?)))
        } else if cfg["model_type"].as_str() == Some("clip") || cfg.get("vision_config").is_some() {
            Ok(LoadedModel::Clip(Box::new(ClipEncoder::load(dir, name)?)))
        } else {
            Ok(LoadedModel::Sentence(Box::new(SentenceEncoder::load(dir, name)?)))
        }
    }

    /// The text tower, when the model has one.
    pub fn text(&self) -> Option<&dyn TextEncoder> {
        match self {
            LoadedModel::Sentence(s) => Some(s.as_ref()),
            LoadedModel::Clip(c) => Some(c.as_ref()),
            LoadedModel::Dual(d) => Some(d.as_ref()),
            LoadedModel::Texture(_) => None,
        }
    }

    /// The image tower, when the model has one.
    pub fn image(&self) -> Option<&dyn ImageEncoder> {
        match self {
            LoadedModel::Sentence(_) => None,
            LoadedModel::Clip(c) => Some(c.as_ref()),
            LoadedModel::Dual(d) => Some(d.as_ref()),
            LoadedModel::Texture(t) => Some(t),
        }
    }
}

/// Tokenises a batch (padded to its longest text) and counts empty and truncated texts;
/// returns the encodings, the counts and the padded length.
pub(crate) fn tokenize(
    tokenizer: &tokenizers::Tokenizer,
    texts: &[&str],
) -> Result<(Vec<tokenizers::Encoding>, EncodeStats, usize)> {
    let mut stats = EncodeStats { texts: texts.len(), ..Default::default() };
    stats.empty = texts.iter().filter(|t| t.trim().is_empty()).count();
    let enc = tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| Error::Tokenizer(e.to_string()))?;
    stats.truncated = enc.iter().filter(|e| !e.get_overflowing().is_empty()).count();
    let len = enc.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
    Ok((enc, stats, len))
}

pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::ModelFile { path: path.into(), message: e.to_string() })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::ModelFile { path: path.into(), message: format!("invalid JSON: {e}") })
}
