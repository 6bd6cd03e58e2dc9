//! A CLIP-style dual encoder trained on the catalog's own image–title pairs.
//!
//! The image tower is a small CNN (3×3 stride-2 convolutions written as im2col + matmul, so
//! the backward pass is matrix products too, then global average pooling) or, to fine-tune,
//! the vision transformer of a CLIP checkpoint. The text side is a two-layer head on frozen
//! sentence vectors from the store (MiniLM, or CLIP's text tower). Both land in one
//! L2-normalised space, trained with the symmetric InfoNCE loss and a learned temperature
//! (Radford et al. 2021).

use std::path::Path;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, Var, D};
use candle_nn::{Module, Optimizer, VarBuilder, VarMap};
use candle_transformers::models::clip::vision_model::ClipVisionTransformer;
use image::imageops::FilterType;
use image::DynamicImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use warmstart_core::paths::replace_file;
use warmstart_core::Rng;

use crate::{ClipShape, Error, ImageEncoder, LoadedModel, Result, TextEncoder};

mod conv;
mod train;

pub use conv::conv3x3_stride2;
pub use train::{DualTrainer, EpochReport, PairSet, Recall, Retrieval, TrainEvent, TrainOptions, TrainReport};

/// `model_type` of a dual encoder's `config.json`.
pub const MODEL_TYPE: &str = "warmstart-dual";
/// Upper bound of the learned logit scale (CLIP's: a temperature of at least 1/100).
const MAX_LOGIT_SCALE: f64 = 4.605_170_2;

/// The image tower of a dual encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TowerKind {
    /// A small CNN trained from scratch.
    Cnn,
    /// The vision transformer of a CLIP checkpoint, fine-tuned.
    Clip,
}

/// Shape of a dual encoder (checked: build it with [`DualConfig::cnn`] or
/// [`DualConfig::clip`], adjust, then [`DualConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualConfig {
    /// Always [`MODEL_TYPE`].
    pub model_type: String,
    /// Image tower.
    pub tower: TowerKind,
    /// Input height in pixels.
    pub image_height: usize,
    /// Input width in pixels.
    pub image_width: usize,
    /// Output channels of each stride-2 convolution (CNN tower).
    pub channels: Vec<usize>,
    /// Store id of the frozen text vectors the text head reads (e.g. `minilm`, `clip/text`).
    pub text_vectors: String,
    /// Their dimension.
    pub text_dim: usize,
    /// Hidden width of the two heads.
    pub hidden: usize,
    /// Dimension of the shared space.
    pub dim: usize,
    /// The CLIP checkpoint's `config.json` (CLIP tower only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<serde_json::Value>,
}

impl DualConfig {
    /// A CNN tower on 64×48 images (the fashion photos' 4:3) over `text_vectors` of `text_dim`.
    pub fn cnn(text_vectors: &str, text_dim: usize) -> DualConfig {
        DualConfig {
            model_type: MODEL_TYPE.into(),
            tower: TowerKind::Cnn,
            image_height: 64,
            image_width: 48,
            channels: vec![32, 64, 128, 256],
            text_vectors: text_vectors.into(),
            text_dim,
            hidden: 256,
            dim: 128,
            clip: None,
        }
    }

    /// A CLIP vision tower of `shape` (square input of its image size).
    pub fn clip(shape: &ClipShape, text_vectors: &str, text_dim: usize) -> DualConfig {
        DualConfig {
            tower: TowerKind::Clip,
            image_height: shape.image_size,
            image_width: shape.image_size,
            channels: Vec::new(),
            clip: Some(shape.to_config()),
            ..DualConfig::cnn(text_vectors, text_dim)
        }
    }

    /// Checks the shape.
    pub fn validate(self) -> Result<DualConfig> {
        let bad = |m: String| Err(Error::Config(m));
        if self.model_type != MODEL_TYPE {
            return bad(format!("model_type is `{}`, expected `{MODEL_TYPE}`", self.model_type));
        }
        if self.dim == 0 || self.hidden == 0 || self.text_dim == 0 {
            return bad("dim, hidden and text_dim must be positive".into());
        }
        match self.tower {
            TowerKind::Cnn => {
                let div = 1usize << self.channels.len();
                if self.channels.is_empty() || self.channels.contains(&0) {
                    return bad("the CNN needs at least one layer of positive width".into());
                }
                if !self.image_height.is_multiple_of(div)
                    || !self.image_width.is_multiple_of(div)
                    || self.image_height == 0
                {
                    return bad(format!(
                        "image {}×{} must be divisible by 2^layers = {div}",
                        self.image_height, self.image_width
                    ));
                }
            }
            TowerKind::Clip => {
                if self.clip.is_none() {
                    return bad("a CLIP tower needs the checkpoint's config (`clip`)".into());
                }
            }
        }
        Ok(self)
    }

    fn clip_shape(&self) -> Result<ClipShape> {
        let v = self.clip.as_ref().ok_or_else(|| Error::Config("no CLIP config".into()))?;
        ClipShape::from_value(v, Path::new("config.json"))
    }

    /// Names, shapes and initial standard deviations of the parameters this crate owns
    /// (the CLIP tower's come from its checkpoint). Biases start at zero.
    fn param_specs(&self) -> Vec<(String, Vec<usize>, f32)> {
        let mut out = Vec::new();
        let mut lin = |name: &str, i: usize, o: usize, gain: f32| {
            out.push((format!("{name}.weight"), vec![i, o], gain / (i as f32).sqrt()));
            out.push((format!("{name}.bias"), vec![o], 0.0));
        };
        let feat = match self.tower {
            TowerKind::Cnn => {
                let mut cin = 3;
                for (l, &c) in self.channels.iter().enumerate() {
                    lin(&format!("cnn.conv{l}"), 9 * cin, c, 2f32.sqrt());
                    cin = c;
                }
                cin
            }
            TowerKind::Clip => self.clip.as_ref().and_then(|c| c["projection_dim"].as_u64()).unwrap_or(512) as usize,
        };
        lin("image_head.0", feat, self.hidden, 2f32.sqrt());
        lin("image_head.1", self.hidden, self.dim, 1.0);
        lin("text_head.0", self.text_dim, self.hidden, 2f32.sqrt());
        lin("text_head.1", self.hidden, self.dim, 1.0);
        out.push(("logit_scale".into(), vec![], 0.0));
        out
    }
}

struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn new(vb: &VarBuilder, name: &str, i: usize, o: usize) -> candle_core::Result<Dense> {
        Ok(Dense { weight: vb.get((i, o), &format!("{name}.weight"))?, bias: vb.get(o, &format!("{name}.bias"))? })
    }
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight)?.broadcast_add(&self.bias)
    }
}

enum Tower {
    Cnn(Vec<Dense>),
    Clip { vision: Box<ClipVisionTransformer>, projection: Tensor, mean: Tensor, std: Tensor },
}

/// A dual encoder's modules (weights either trainable [`Var`]s or loaded tensors).
pub struct DualModel {
    config: DualConfig,
    tower: Tower,
    image_head: [Dense; 2],
    text_head: [Dense; 2],
    logit_scale: Tensor,
    device: Device,
}

fn l2_normalise(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?)
}

impl DualModel {
    fn build(config: DualConfig, vb: &VarBuilder) -> candle_core::Result<DualModel> {
        let device = vb.device().clone();
        let tower = match config.tower {
            TowerKind::Cnn => {
                let mut cin = 3;
                let mut layers = Vec::new();
                for (l, &c) in config.channels.iter().enumerate() {
                    layers.push(Dense::new(vb, &format!("cnn.conv{l}"), 9 * cin, c)?);
                    cin = c;
                }
                Tower::Cnn(layers)
            }
            TowerKind::Clip => {
                let shape = config.clip_shape().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                let clip = vb.pp("clip");
                let pre = crate::ImagePreprocess::default();
                Tower::Clip {
                    vision: Box::new(ClipVisionTransformer::new(clip.pp("vision_model"), &shape.vision())?),
                    // Hugging Face stores the projection as (out, in)
                    projection: clip
                        .get((shape.projection_dim, shape.vision_hidden), "visual_projection.weight")?
                        .t()?,
                    mean: Tensor::new(&pre.mean, &device)?.reshape((1, 3, 1, 1))?,
                    std: Tensor::new(&pre.std, &device)?.reshape((1, 3, 1, 1))?,
                }
            }
        };
        let feat = match config.tower {
            TowerKind::Cnn => *config.channels.last().unwrap_or(&1),
            TowerKind::Clip => config.clip_shape().map(|s| s.projection_dim).unwrap_or(512),
        };
        let (h, t, d) = (config.hidden, config.text_dim, config.dim);
        Ok(DualModel {
            image_head: [Dense::new(vb, "image_head.0", feat, h)?, Dense::new(vb, "image_head.1", h, d)?],
            text_head: [Dense::new(vb, "text_head.0", t, h)?, Dense::new(vb, "text_head.1", h, d)?],
            logit_scale: vb.get((), "logit_scale")?,
            tower,
            config,
            device,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &DualConfig {
        &self.config
    }

    /// The current temperature (1 / exp(logit scale)).
    pub fn temperature(&self) -> Result<f32> {
        Ok((-self.logit_scale.clamp(0.0, MAX_LOGIT_SCALE)?.to_scalar::<f32>()?).exp())
    }

    /// Input tensor of `n` images given as `height × width × 3` bytes each.
    fn image_input(&self, pixels: &[u8], n: usize) -> candle_core::Result<Tensor> {
        let (h, w) = (self.config.image_height, self.config.image_width);
        let x = Tensor::from_vec(pixels.to_vec(), (n, h, w, 3), &self.device)?.to_dtype(DType::F32)?;
        match &self.tower {
            // centred and scaled to about unit variance
            Tower::Cnn(_) => x.affine(4.0 / 255.0, -2.0),
            Tower::Clip { mean, std, .. } => {
                (x / 255.0)?.permute((0, 3, 1, 2))?.contiguous()?.broadcast_sub(mean)?.broadcast_div(std)
            }
        }
    }

    /// L2-normalised image embeddings (`n × dim`) of prepared images.
    pub fn embed_pixels(&self, pixels: &[u8], n: usize) -> candle_core::Result<Tensor> {
        let x = self.image_input(pixels, n)?;
        let feat = match &self.tower {
            Tower::Cnn(layers) => {
                let mut x = x;
                for l in layers {
                    x = conv3x3_stride2(&x, &l.weight, &l.bias)?.relu()?;
                }
                x.mean((1, 2))?
            }
            Tower::Clip { vision, projection, .. } => vision.forward(&x)?.matmul(projection)?,
        };
        let hid = self.image_head[0].forward(&feat)?.relu()?;
        l2_normalise(&self.image_head[1].forward(&hid)?)
    }

    /// L2-normalised text embeddings (`n × dim`) of frozen text vectors (`n × text_dim`).
    pub fn embed_text_vectors(&self, vectors: &[f32], n: usize) -> candle_core::Result<Tensor> {
        let t = Tensor::from_vec(vectors.to_vec(), (n, self.config.text_dim), &self.device)?;
        let hid = self.text_head[0].forward(&t)?.relu()?;
        l2_normalise(&self.text_head[1].forward(&hid)?)
    }

    /// The symmetric InfoNCE loss of a batch of matching pairs.
    pub fn batch_loss(&self, pixels: &[u8], text: &[f32], n: usize) -> candle_core::Result<Tensor> {
        let img = self.embed_pixels(pixels, n)?;
        let txt = self.embed_text_vectors(text, n)?;
        info_nce(&img, &txt, &self.logit_scale.clamp(0.0, MAX_LOGIT_SCALE)?)
    }

    /// Loads a saved dual encoder (`config.json` + `model.safetensors`).
    pub fn load(dir: &Path) -> Result<DualModel> {
        let cfg_path = dir.join("config.json");
        let config: DualConfig = serde_json::from_value(crate::read_json(&cfg_path)?)
            .map_err(|e| Error::ModelFile { path: cfg_path.clone(), message: e.to_string() })?;
        let config = config.validate()?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::ModelFile { path: weights, message: "not found".into() });
        }
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&weights), DType::F32, &Device::Cpu) }
                .map_err(|e| Error::Checkpoint { path: weights.clone(), message: e.to_string() })?;
        DualModel::build(config, &vb).map_err(|e| Error::Checkpoint { path: weights, message: e.to_string() })
    }
}

/// Symmetric InfoNCE: mean of the cross-entropies of `scale · image · textᵀ` along rows
/// (image → text) and columns (text → image), pair `i` being the positive of row/column `i`.
/// `image` and `text` are `n × d` and L2-normalised; `logit_scale` is a scalar (log of the
/// inverse temperature).
pub fn info_nce(image: &Tensor, text: &Tensor, logit_scale: &Tensor) -> candle_core::Result<Tensor> {
    let n = image.dim(0)?;
    let logits = image.matmul(&text.t()?)?.broadcast_mul(&logit_scale.exp()?)?;
    let labels = Tensor::arange(0u32, n as u32, image.device())?;
    let i2t = candle_nn::loss::cross_entropy(&logits, &labels)?;
    let t2i = candle_nn::loss::cross_entropy(&logits.t()?.contiguous()?, &labels)?;
    (i2t + t2i)? / 2.0
}

/// Resizes an image into a model's `height × width × 3` input bytes: straight resize when
/// `crop` is false (the tower was built for the catalog's aspect ratio), else shortest side
/// to fit and a centre crop (CLIP).
pub fn prepare_image(img: &DynamicImage, height: usize, width: usize, crop: bool) -> Vec<u8> {
    let (h, w) = (height as u32, width as u32);
    let rgb = img.to_rgb8();
    let out = if !crop {
        if rgb.dimensions() == (w, h) {
            rgb
        } else {
            image::imageops::resize(&rgb, w, h, FilterType::Triangle)
        }
    } else {
        let scale = (w as f32 / rgb.width() as f32).max(h as f32 / rgb.height() as f32);
        let (rw, rh) = (
            ((rgb.width() as f32 * scale).round() as u32).max(w),
            ((rgb.height() as f32 * scale).round() as u32).max(h),
        );
        let resized = image::imageops::resize(&rgb, rw, rh, FilterType::CatmullRom);
        image::imageops::crop_imm(&resized, (rw - w) / 2, (rh - h) / 2, w, h).to_image()
    };
    out.into_raw()
}

/// A trained dual encoder as text and image encoders (`<name>/text`, `<name>/image`): images
/// through the tower, texts through the text model named in the config and then the head.
pub struct DualEncoder {
    model: DualModel,
    text_model: Option<Box<LoadedModel>>,
    name: String,
}

impl DualEncoder {
    /// Loads the dual encoder in `dir` as `name`; `home` is where its text model lives (it
    /// is loaded, and fetched if needed, only when `with_text`).
    pub fn load(dir: &Path, name: &str, home: &Path, with_text: bool) -> Result<DualEncoder> {
        let model = DualModel::load(dir)?;
        let text_model = if with_text {
            let base = model.config.text_vectors.split('/').next().unwrap_or_default().to_string();
            Some(Box::new(LoadedModel::load(home, &base)?))
        } else {
            None
        };
        Ok(DualEncoder { model, text_model, name: name.to_string() })
    }

    /// The underlying model.
    pub fn model(&self) -> &DualModel {
        &self.model
    }
}

impl ImageEncoder for DualEncoder {
    fn id(&self) -> String {
        format!("{}/image", self.name)
    }

    fn dim(&self) -> usize {
        self.model.config.dim
    }

    fn encode_images(&self, images: &[DynamicImage]) -> Result<Vec<f32>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let c = &self.model.config;
        let crop = c.tower == TowerKind::Clip;
        let px: Vec<u8> = images.iter().flat_map(|i| prepare_image(i, c.image_height, c.image_width, crop)).collect();
        Ok(self.model.embed_pixels(&px, images.len())?.flatten_all()?.to_vec1::<f32>()?)
    }
}

impl TextEncoder for DualEncoder {
    fn id(&self) -> String {
        format!("{}/text", self.name)
    }

    fn dim(&self) -> usize {
        self.model.config.dim
    }

    fn max_len(&self) -> usize {
        self.text_model.as_ref().and_then(|m| m.text()).map(|t| t.max_len()).unwrap_or(0)
    }

    fn encode_texts(&self, texts: &[&str]) -> Result<(Vec<f32>, crate::EncodeStats)> {
        if texts.is_empty() {
            return Ok((Vec::new(), crate::EncodeStats::default()));
        }
        let base =
            self.text_model.as_ref().and_then(|m| m.text()).ok_or_else(|| Error::NoTower(self.name.clone(), "text"))?;
        let (vecs, stats) = base.encode_texts(texts)?;
        let out = self.model.embed_text_vectors(&vecs, texts.len())?.flatten_all()?.to_vec1::<f32>()?;
        Ok((out, stats))
    }
}
