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

/// 3×3 convolution with stride 2 and zero padding 1 on NHWC input, as im2col + matmul;
/// `weight` is `(9 · C_in) × C_out` in (dy, dx, channel) order. H and W must be even.
pub fn conv3x3_stride2(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    let out_c = weight.dim(1)?;
    let patches = x.contiguous()?.apply_op1(Im2Col)?.reshape((b * ho * wo, 9 * c))?;
    patches.matmul(weight)?.broadcast_add(bias)?.reshape((b, ho, wo, out_c))
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(candle_core::Error::Msg(format!("{op} needs a contiguous f32 tensor"))),
    }
}

/// The patches of a 3×3, stride 2, padding 1 convolution: `[B, H, W, C]` →
/// `[B, H/2, W/2, 9·C]` (a candle op whose gradient is [`Col2Im`]).
struct Im2Col;

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-3x3-s2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = l.shape().dims4()?;
        let src = f32_slice(s, l, self.name())?;
        let (ho, wo) = (h / 2, w / 2);
        let mut out = vec![0f32; b * ho * wo * 9 * c];
        out.par_chunks_mut((ho * wo * 9 * c).max(1)).enumerate().for_each(|(bi, o)| {
            let img = &src[bi * h * w * c..(bi + 1) * h * w * c];
            for oy in 0..ho {
                for ox in 0..wo {
                    let base = (oy * wo + ox) * 9 * c;
                    for dy in 0..3 {
                        // padded row 2·oy + dy is input row 2·oy + dy − 1
                        let Some(iy) = (2 * oy + dy).checked_sub(1).filter(|&y| y < h) else { continue };
                        for dx in 0..3 {
                            let Some(ix) = (2 * ox + dx).checked_sub(1).filter(|&x| x < w) else { continue };
                            let k = base + (dy * 3 + dx) * c;
                            let from = (iy * w + ix) * c;
                            o[k..k + c].copy_from_slice(&img[from..from + c]);
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, ho, wo, 9 * c))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (_, h, w, _) = arg.dims4()?;
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im { h, w })?))
    }
}

/// The adjoint of [`Im2Col`]: sums patch values back onto the `[B, h, w, C]` input grid.
struct Col2Im {
    h: usize,
    w: usize,
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im-3x3-s2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, ho, wo, c9) = l.shape().dims4()?;
        let (h, w, c) = (self.h, self.w, c9 / 9);
        let src = f32_slice(s, l, self.name())?;
        let mut out = vec![0f32; b * h * w * c];
        out.par_chunks_mut((h * w * c).max(1)).enumerate().for_each(|(bi, img)| {
            let cols = &src[bi * ho * wo * c9..(bi + 1) * ho * wo * c9];
            for oy in 0..ho {
                for ox in 0..wo {
                    let base = (oy * wo + ox) * c9;
                    for dy in 0..3 {
                        let Some(iy) = (2 * oy + dy).checked_sub(1).filter(|&y| y < h) else { continue };
                        for dx in 0..3 {
                            let Some(ix) = (2 * ox + dx).checked_sub(1).filter(|&x| x < w) else { continue };
                            let k = base + (dy * 3 + dx) * c;
                            let to = (iy * w + ix) * c;
                            for (o, v) in img[to..to + c].iter_mut().zip(&cols[k..k + c]) {
                                *o += v;
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, h, w, c))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col)?))
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

/// Image–text pairs to train on: prepared images (`n × height × width × 3` bytes) and
/// frozen text vectors (`n × text_dim`).
#[derive(Debug, Clone, Default)]
pub struct PairSet {
    /// Image bytes.
    pub pixels: Vec<u8>,
    /// Text vectors.
    pub text: Vec<f32>,
    /// Number of pairs.
    pub n: usize,
}

impl PairSet {
    fn gather(
        &self,
        idx: &[usize],
        img_len: usize,
        text_dim: usize,
        flips: Option<&mut Rng>,
        width: usize,
    ) -> (Vec<u8>, Vec<f32>) {
        let mut px = Vec::with_capacity(idx.len() * img_len);
        let mut tx = Vec::with_capacity(idx.len() * text_dim);
        let mut flips = flips;
        for &i in idx {
            let src = &self.pixels[i * img_len..(i + 1) * img_len];
            let flip = flips.as_mut().is_some_and(|r| r.below(2) == 1);
            if flip {
                // mirror each row
                for row in src.chunks_exact(width * 3) {
                    for x in (0..width).rev() {
                        px.extend_from_slice(&row[x * 3..x * 3 + 3]);
                    }
                }
            } else {
                px.extend_from_slice(src);
            }
            tx.extend_from_slice(&self.text[i * text_dim..(i + 1) * text_dim]);
        }
        (px, tx)
    }
}

/// Recall at 1 and 10 of one retrieval direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recall {
    /// Share of queries whose match ranks first.
    #[serde(rename = "recall@1")]
    pub at1: f64,
    /// Share of queries whose match is in the top 10.
    #[serde(rename = "recall@10")]
    pub at10: f64,
}

/// Retrieval scores on a pool of matching pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retrieval {
    /// Pool size.
    pub pool: usize,
    /// Titles as queries, images ranked.
    pub text_to_image: Recall,
    /// Images as queries, titles ranked.
    pub image_to_text: Recall,
}

impl Retrieval {
    /// Expected scores of a random ranking of a pool of `pool`.
    pub fn random(pool: usize) -> Retrieval {
        let r = |k: usize| (k.min(pool) as f64) / pool.max(1) as f64;
        let recall = Recall { at1: r(1), at10: r(10) };
        Retrieval { pool, text_to_image: recall, image_to_text: recall }
    }

    /// Scores of L2-normalised `image` and `text` rows (`pool × dim` each, row `i` of one
    /// matching row `i` of the other). The rank of a match counts the candidates scoring
    /// strictly higher, so ties do not help.
    pub fn of(image: &[f32], text: &[f32], dim: usize) -> Retrieval {
        let pool = image.len() / dim.max(1);
        let dot = |a: usize, b: usize| -> f32 {
            image[a * dim..(a + 1) * dim].iter().zip(&text[b * dim..(b + 1) * dim]).map(|(x, y)| x * y).sum()
        };
        let sims: Vec<f32> = (0..pool * pool).map(|k| dot(k / pool, k % pool)).collect(); // [image][text]
        let (mut t2i, mut i2t) = ([0usize; 2], [0usize; 2]);
        for q in 0..pool {
            let target = sims[q * pool + q];
            let rank_t2i = (0..pool).filter(|&i| sims[i * pool + q] > target).count();
            let rank_i2t = (0..pool).filter(|&t| sims[q * pool + t] > target).count();
            for (acc, rank) in [(&mut t2i, rank_t2i), (&mut i2t, rank_i2t)] {
                acc[0] += usize::from(rank < 1);
                acc[1] += usize::from(rank < 10);
            }
        }
        let r = |c: usize| c as f64 / pool.max(1) as f64;
        Retrieval {
            pool,
            text_to_image: Recall { at1: r(t2i[0]), at10: r(t2i[1]) },
            image_to_text: Recall { at1: r(i2t[0]), at10: r(i2t[1]) },
        }
    }
}

/// Training settings (checked by [`TrainOptions::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Passes over the training pairs.
    pub epochs: usize,
    /// Pairs per step (the in-batch negatives).
    pub batch: usize,
    /// Peak learning rate of AdamW (linear warm-up, cosine decay).
    pub learning_rate: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Pairs held out for the retrieval scores.
    pub held_out: usize,
    /// Mirror training images at random.
    pub flip: bool,
    /// Seed of initialisation, split, order and augmentation.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 8,
            batch: 256,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            held_out: 1000,
            flip: true,
            seed: 42,
        }
    }
}

impl TrainOptions {
    /// Checks the settings against `n` pairs.
    pub fn validate(self, n: usize) -> Result<TrainOptions> {
        if self.epochs == 0 || self.batch < 2 {
            return Err(Error::Config("epochs must be positive and batch at least 2".into()));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) || self.weight_decay < 0.0 {
            return Err(Error::Config("learning rate must be positive, weight decay not negative".into()));
        }
        if self.held_out < 2 || n < self.held_out + 2 {
            return Err(Error::Config(format!(
                "{n} pairs cannot hold out {} (at least 2) and still train",
                self.held_out
            )));
        }
        Ok(self)
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// InfoNCE on the held-out pairs.
    pub held_out_loss: f64,
    /// Held-out retrieval.
    pub retrieval: Retrieval,
    /// Temperature after the epoch.
    pub temperature: f32,
    /// Wall-clock seconds of training (not evaluation).
    pub seconds: f64,
}

/// Progress events of [`DualTrainer::train`].
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// A step finished with this loss.
    Step {
        /// Epoch (1-based).
        epoch: usize,
        /// Loss of the step.
        loss: f32,
    },
    /// An epoch finished.
    Epoch(EpochReport),
}

/// The result of training.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Pairs trained on.
    pub train_pairs: usize,
    /// Pairs held out.
    pub held_out_pairs: usize,
    /// Loss of every step.
    pub step_losses: Vec<f32>,
    /// Per epoch.
    pub epochs: Vec<EpochReport>,
    /// Held-out retrieval before training.
    pub initial: Retrieval,
    /// Expected retrieval of a random ranking.
    pub random: Retrieval,
    /// Training pairs per second (all epochs).
    pub pairs_per_second: f64,
}

/// A dual encoder with trainable weights.
pub struct DualTrainer {
    model: DualModel,
    varmap: VarMap,
}

impl DualTrainer {
    /// A fresh model of `config`, initialised from `seed` (He-normal weights, zero biases,
    /// temperature 0.07 like CLIP).
    pub fn new(config: DualConfig, seed: u64) -> Result<DualTrainer> {
        DualTrainer::with_clip(config, seed, None)
    }

    /// Like [`new`](Self::new) for a CLIP tower, starting from the vision transformer and
    /// visual projection of the CLIP checkpoint in `clip_dir` (fine-tuning).
    pub fn from_clip(config: DualConfig, clip_dir: &Path, seed: u64) -> Result<DualTrainer> {
        DualTrainer::with_clip(config, seed, Some(clip_dir))
    }

    fn with_clip(config: DualConfig, seed: u64, clip_dir: Option<&Path>) -> Result<DualTrainer> {
        let config = config.validate()?;
        let device = Device::Cpu;
        let varmap = VarMap::new();
        {
            let mut vars = varmap.data().lock().map_err(|_| Error::Config("poisoned variable map".into()))?;
            let mut rng = Rng::new(seed);
            for (name, shape, std) in config.param_specs() {
                let len: usize = shape.iter().product();
                let values: Vec<f32> = if name == "logit_scale" {
                    vec![(1.0f32 / 0.07).ln()]
                } else {
                    (0..len).map(|_| rng.normal_f32() * std).collect()
                };
                vars.insert(name, Var::from_tensor(&Tensor::from_vec(values, shape, &device)?)?);
            }
            if config.tower == TowerKind::Clip {
                let dir =
                    clip_dir.ok_or_else(|| Error::Config("a CLIP tower needs a checkpoint to start from".into()))?;
                let weights = dir.join("model.safetensors");
                let tensors = candle_core::safetensors::load(&weights, &device)
                    .map_err(|e| Error::Checkpoint { path: weights.clone(), message: e.to_string() })?;
                for name in crate::clip::REQUIRED {
                    if !tensors.contains_key(*name) {
                        return Err(Error::Checkpoint { path: weights, message: format!("missing tensor {name}") });
                    }
                }
                for (name, t) in tensors {
                    if name.starts_with("vision_model.") || name.starts_with("visual_projection.") {
                        vars.insert(format!("clip.{name}"), Var::from_tensor(&t.to_dtype(DType::F32)?)?);
                    }
                }
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = DualModel::build(config, &vb)?;
        Ok(DualTrainer { model, varmap })
    }

    /// The model being trained.
    pub fn model(&self) -> &DualModel {
        &self.model
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let io = |path: &Path, e: String| Error::ModelFile { path: path.into(), message: e };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e.to_string()))?;
        let cfg = dir.join("config.json");
        let text = serde_json::to_string_pretty(&self.model.config).map_err(|e| io(&cfg, e.to_string()))?;
        // whole files, renamed into place: a reader may have the old weights memory-mapped
        replace_file(&cfg, |tmp| std::fs::write(tmp, &text)).map_err(|e| io(&cfg, e.to_string()))?;
        let weights = dir.join("model.safetensors");
        replace_file(&weights, |tmp| self.varmap.save(tmp).map_err(std::io::Error::other))
            .map_err(|e| io(&weights, e.to_string()))
    }

    fn evaluate(&self, data: &PairSet, idx: &[usize]) -> Result<(f64, Retrieval)> {
        let cfg = &self.model.config;
        let img_len = cfg.image_height * cfg.image_width * 3;
        let (mut imgs, mut txts) = (Vec::new(), Vec::new());
        for chunk in idx.chunks(256) {
            let (px, tx) = data.gather(chunk, img_len, cfg.text_dim, None, cfg.image_width);
            imgs.extend(self.model.embed_pixels(&px, chunk.len())?.flatten_all()?.to_vec1::<f32>()?);
            txts.extend(self.model.embed_text_vectors(&tx, chunk.len())?.flatten_all()?.to_vec1::<f32>()?);
        }
        let n = idx.len();
        let d = cfg.dim;
        let img = Tensor::from_vec(imgs.clone(), (n, d), &self.model.device)?;
        let txt = Tensor::from_vec(txts.clone(), (n, d), &self.model.device)?;
        let loss = info_nce(&img, &txt, &self.model.logit_scale.clamp(0.0, MAX_LOGIT_SCALE)?)?.to_scalar::<f32>()?;
        Ok((loss as f64, Retrieval::of(&imgs, &txts, d)))
    }

    /// Trains on `data`, holding out `opts.held_out` pairs (chosen with the seed) for the
    /// retrieval scores after every epoch; `on_event` sees every step and epoch.
    pub fn train(
        &mut self,
        data: &PairSet,
        opts: TrainOptions,
        mut on_event: impl FnMut(&TrainEvent),
    ) -> Result<TrainReport> {
        let opts = opts.validate(data.n)?;
        let cfg = self.model.config.clone();
        let img_len = cfg.image_height * cfg.image_width * 3;
        if data.pixels.len() != data.n * img_len || data.text.len() != data.n * cfg.text_dim {
            return Err(Error::Config(format!(
                "pairs do not match the model: {} image bytes and {} text values for {} pairs of {}×{}×3 and {}",
                data.pixels.len(),
                data.text.len(),
                data.n,
                cfg.image_height,
                cfg.image_width,
                cfg.text_dim
            )));
        }
        let mut rng = Rng::new(opts.seed ^ 0x5eed);
        let mut order: Vec<usize> = (0..data.n).collect();
        rng.shuffle(&mut order);
        let held: Vec<usize> = order[..opts.held_out].to_vec();
        let mut train: Vec<usize> = order[opts.held_out..].to_vec();
        let (_, initial) = self.evaluate(data, &held)?;
        let steps_per_epoch = train.len().div_ceil(opts.batch);
        let total = steps_per_epoch * opts.epochs;
        let warmup = (total / 20).max(1);
        let mut opt = candle_nn::AdamW::new(
            self.varmap.all_vars(),
            candle_nn::ParamsAdamW { lr: opts.learning_rate, weight_decay: opts.weight_decay, ..Default::default() },
        )?;
        let mut report = TrainReport {
            train_pairs: train.len(),
            held_out_pairs: held.len(),
            step_losses: Vec::with_capacity(total),
            epochs: Vec::new(),
            initial,
            random: Retrieval::random(held.len()),
            pairs_per_second: 0.0,
        };
        let mut step = 0usize;
        let mut train_secs = 0.0;
        for epoch in 1..=opts.epochs {
            let started = std::time::Instant::now();
            rng.shuffle(&mut train);
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for chunk in train.chunks(opts.batch) {
                if chunk.len() < 2 {
                    continue;
                }
                opt.set_learning_rate(warmstart_core::schedule::warmup_cosine(step, warmup, total, opts.learning_rate));
                let flips = opts.flip.then_some(&mut rng);
                let (px, tx) = data.gather(chunk, img_len, cfg.text_dim, flips, cfg.image_width);
                let loss = self.model.batch_loss(&px, &tx, chunk.len())?;
                opt.backward_step(&loss)?;
                let l = loss.to_scalar::<f32>()?;
                if !l.is_finite() {
                    return Err(Error::Config(format!("training diverged at step {step} (loss {l})")));
                }
                report.step_losses.push(l);
                sum += l as f64;
                count += 1;
                step += 1;
                on_event(&TrainEvent::Step { epoch, loss: l });
            }
            let seconds = started.elapsed().as_secs_f64();
            train_secs += seconds;
            let (held_out_loss, retrieval) = self.evaluate(data, &held)?;
            let e = EpochReport {
                epoch,
                train_loss: sum / count.max(1) as f64,
                held_out_loss,
                retrieval,
                temperature: self.model.temperature()?,
                seconds,
            };
            on_event(&TrainEvent::Epoch(e.clone()));
            report.epochs.push(e);
        }
        report.pairs_per_second = (report.train_pairs * opts.epochs) as f64 / train_secs.max(1e-9);
        Ok(report)
    }
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
