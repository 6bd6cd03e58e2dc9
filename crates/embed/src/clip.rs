//! CLIP text and image towers from a Hugging Face format checkpoint (`config.json`,
//! `model.safetensors`, `tokenizer.json`, optional `preprocessor_config.json`), on
//! `candle_transformers::models::clip`.
//!
//! Text: CLIP BPE tokens, causal transformer, the hidden state at the end-of-text token,
//! text projection, L2 norm. Image: [`ImagePreprocess`], ViT, class token, visual
//! projection, L2 norm. Both land in one space, so a text query ranks images.
//!
//! [`write_random_checkpoint`] builds a checkpoint with the real tensor names and shapes
//! and seeded random values, for tests and benchmarks where no real weights are reachable.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use candle_transformers::models::clip::text_model::{Activation, ClipTextConfig, ClipTextTransformer};
use candle_transformers::models::clip::vision_model::{ClipVisionConfig, ClipVisionTransformer};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use warmstart_core::Rng;

use crate::preprocess::ImagePreprocess;
use crate::{read_json, EncodeStats, Error, ImageEncoder, Result, TextEncoder};

/// The shape of a CLIP checkpoint (the parts of Hugging Face's `CLIPConfig` the towers use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipShape {
    /// Shared embedding dimension.
    pub projection_dim: usize,
    /// Text vocabulary size.
    pub vocab_size: usize,
    /// Text width.
    pub text_hidden: usize,
    /// Text MLP width.
    pub text_intermediate: usize,
    /// Text layers.
    pub text_layers: usize,
    /// Text attention heads.
    pub text_heads: usize,
    /// Token window.
    pub max_positions: usize,
    /// Vision width.
    pub vision_hidden: usize,
    /// Vision MLP width.
    pub vision_intermediate: usize,
    /// Vision layers.
    pub vision_layers: usize,
    /// Vision attention heads.
    pub vision_heads: usize,
    /// Input image side.
    pub image_size: usize,
    /// Patch side.
    pub patch_size: usize,
}

impl ClipShape {
    /// openai/clip-vit-base-patch32 (also the defaults of Hugging Face's `CLIPConfig`).
    pub fn vit_base_patch32() -> ClipShape {
        ClipShape {
            projection_dim: 512,
            vocab_size: 49408,
            text_hidden: 512,
            text_intermediate: 2048,
            text_layers: 12,
            text_heads: 8,
            max_positions: 77,
            vision_hidden: 768,
            vision_intermediate: 3072,
            vision_layers: 12,
            vision_heads: 12,
            image_size: 224,
            patch_size: 32,
        }
    }

    /// A tiny shape (16-d, two layers per tower, 32-pixel images, the 514-token byte-level
    /// vocabulary of [`write_random_checkpoint`]) for tests and examples.
    pub fn tiny() -> ClipShape {
        ClipShape {
            projection_dim: 16,
            vocab_size: 514,
            text_hidden: 32,
            text_intermediate: 64,
            text_layers: 2,
            text_heads: 4,
            max_positions: 24,
            vision_hidden: 32,
            vision_intermediate: 64,
            vision_layers: 2,
            vision_heads: 4,
            image_size: 32,
            patch_size: 8,
        }
    }

    /// Reads a Hugging Face `config.json`; absent fields take `CLIPConfig`'s defaults.
    pub fn from_config(path: &Path) -> Result<ClipShape> {
        ClipShape::from_value(&read_json(path)?, path)
    }

    /// Parses the JSON of a Hugging Face `config.json` (`path` names it in errors).
    pub fn from_value(v: &serde_json::Value, path: &Path) -> Result<ClipShape> {
        let d = ClipShape::vit_base_patch32();
        let bad = |m: String| Error::ModelFile { path: path.into(), message: m };
        let get = |section: &str, key: &str, default: usize| -> Result<usize> {
            let node = if section.is_empty() { v.get(key) } else { v.get(section).and_then(|s| s.get(key)) };
            match node {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(x) => x
                    .as_u64()
                    .filter(|&n| n > 0)
                    .map(|n| n as usize)
                    .ok_or_else(|| bad(format!("`{section}.{key}` must be a positive integer"))),
            }
        };
        for section in ["text_config", "vision_config"] {
            if let Some(act) = v.get(section).and_then(|s| s.get("hidden_act")).and_then(|a| a.as_str()) {
                if act != "quick_gelu" {
                    return Err(bad(format!("`{section}.hidden_act` = {act}: only quick_gelu is supported")));
                }
            }
        }
        let s = ClipShape {
            projection_dim: get("", "projection_dim", d.projection_dim)?,
            vocab_size: get("text_config", "vocab_size", d.vocab_size)?,
            text_hidden: get("text_config", "hidden_size", d.text_hidden)?,
            text_intermediate: get("text_config", "intermediate_size", d.text_intermediate)?,
            text_layers: get("text_config", "num_hidden_layers", d.text_layers)?,
            text_heads: get("text_config", "num_attention_heads", d.text_heads)?,
            max_positions: get("text_config", "max_position_embeddings", d.max_positions)?,
            vision_hidden: get("vision_config", "hidden_size", d.vision_hidden)?,
            vision_intermediate: get("vision_config", "intermediate_size", d.vision_intermediate)?,
            vision_layers: get("vision_config", "num_hidden_layers", d.vision_layers)?,
            vision_heads: get("vision_config", "num_attention_heads", d.vision_heads)?,
            image_size: get("vision_config", "image_size", d.image_size)?,
            patch_size: get("vision_config", "patch_size", d.patch_size)?,
        };
        if !s.text_hidden.is_multiple_of(s.text_heads) || !s.vision_hidden.is_multiple_of(s.vision_heads) {
            return Err(bad("hidden_size must be a multiple of num_attention_heads".into()));
        }
        if !s.image_size.is_multiple_of(s.patch_size) {
            return Err(bad("image_size must be a multiple of patch_size".into()));
        }
        Ok(s)
    }

    /// The Hugging Face `config.json` of this shape.
    pub fn to_config(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": self.projection_dim,
            "text_config": {
                "vocab_size": self.vocab_size, "hidden_size": self.text_hidden,
                "intermediate_size": self.text_intermediate, "num_hidden_layers": self.text_layers,
                "num_attention_heads": self.text_heads, "max_position_embeddings": self.max_positions,
                "hidden_act": "quick_gelu", "projection_dim": self.projection_dim
            },
            "vision_config": {
                "hidden_size": self.vision_hidden, "intermediate_size": self.vision_intermediate,
                "num_hidden_layers": self.vision_layers, "num_attention_heads": self.vision_heads,
                "image_size": self.image_size, "patch_size": self.patch_size, "num_channels": 3,
                "hidden_act": "quick_gelu", "projection_dim": self.projection_dim
            }
        })
    }

    fn text(&self) -> ClipTextConfig {
        ClipTextConfig {
            vocab_size: self.vocab_size,
            embed_dim: self.text_hidden,
            activation: Activation::QuickGelu,
            intermediate_size: self.text_intermediate,
            max_position_embeddings: self.max_positions,
            pad_with: None,
            num_hidden_layers: self.text_layers,
            num_attention_heads: self.text_heads,
            projection_dim: self.projection_dim,
        }
    }

    pub(crate) fn vision(&self) -> ClipVisionConfig {
        ClipVisionConfig {
            embed_dim: self.vision_hidden,
            activation: Activation::QuickGelu,
            intermediate_size: self.vision_intermediate,
            num_hidden_layers: self.vision_layers,
            num_attention_heads: self.vision_heads,
            projection_dim: self.projection_dim,
            num_channels: 3,
            image_size: self.image_size,
            patch_size: self.patch_size,
        }
    }
}

/// Tensors that candle would silently invent when absent; a checkpoint must carry them.
pub(crate) const REQUIRED: &[&str] = &["vision_model.embeddings.class_embedding"];

struct Towers {
    text: ClipTextTransformer,
    vision: ClipVisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
}

fn build(vb: &VarBuilder, s: &ClipShape) -> candle_core::Result<Towers> {
    Ok(Towers {
        text: ClipTextTransformer::new(vb.pp("text_model"), &s.text())?,
        vision: ClipVisionTransformer::new(vb.pp("vision_model"), &s.vision())?,
        text_projection: candle_nn::linear_no_bias(s.text_hidden, s.projection_dim, vb.pp("text_projection"))?,
        visual_projection: candle_nn::linear_no_bias(s.vision_hidden, s.projection_dim, vb.pp("visual_projection"))?,
    })
}

/// A CLIP model: text and image towers into one L2-normalised space.
pub struct ClipEncoder {
    towers: Towers,
    tokenizer: Tokenizer,
    preprocess: ImagePreprocess,
    shape: ClipShape,
    device: Device,
    id: String,
}

fn l2_rows(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    let norm = t.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    t.broadcast_div(&norm)?.flatten_all()?.to_vec1::<f32>()
}

impl ClipEncoder {
    /// Loads a checkpoint directory. `id` names the model in caches (`clip` gives the
    /// stored models `clip/text` and `clip/image`).
    pub fn load(dir: &Path, id: &str) -> Result<ClipEncoder> {
        let shape = ClipShape::from_config(&dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::ModelFile { path: weights, message: "not found".into() });
        }
        let device = Device::Cpu;
        let ck = |m: String| Error::Checkpoint { path: weights.clone(), message: m };
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&weights), DType::F32, &device) }
            .map_err(|e| ck(e.to_string()))?;
        for name in REQUIRED {
            if !vb.contains_tensor(name) {
                return Err(ck(format!("missing tensor {name}")));
            }
        }
        let towers = build(&vb, &shape).map_err(|e| ck(e.to_string()))?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| Error::ModelFile { path: tok_path.clone(), message: e.to_string() })?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: shape.max_positions, ..Default::default() }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let preprocess = ImagePreprocess::from_dir(dir, shape.image_size)?;
        Ok(ClipEncoder { towers, tokenizer, preprocess, shape, device, id: id.to_string() })
    }

    /// The checkpoint's shape.
    pub fn shape(&self) -> &ClipShape {
        &self.shape
    }

    /// The image preprocessing in use.
    pub fn preprocess(&self) -> &ImagePreprocess {
        &self.preprocess
    }

    /// Encodes already preprocessed images (each `3 × size × size`, see [`ImagePreprocess`]).
    pub fn encode_pixels(&self, pixels: &[Vec<f32>]) -> Result<Vec<f32>> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.preprocess.size;
        let mut flat = Vec::with_capacity(pixels.len() * 3 * s * s);
        for p in pixels {
            if p.len() != 3 * s * s {
                return Err(Error::Image(format!("pixel buffer of {} values, expected {}", p.len(), 3 * s * s)));
            }
            flat.extend_from_slice(p);
        }
        let x = Tensor::from_vec(flat, (pixels.len(), 3, s, s), &self.device)?;
        let pooled = self.towers.vision.forward(&x)?;
        Ok(l2_rows(&self.towers.visual_projection.forward(&pooled)?)?)
    }
}

impl TextEncoder for ClipEncoder {
    fn id(&self) -> String {
        format!("{}/text", self.id)
    }

    fn dim(&self) -> usize {
        self.shape.projection_dim
    }

    fn max_len(&self) -> usize {
        self.shape.max_positions
    }

    fn encode_texts(&self, texts: &[&str]) -> Result<(Vec<f32>, EncodeStats)> {
        if texts.is_empty() {
            return Ok((Vec::new(), EncodeStats::default()));
        }
        let (enc, stats, len) = crate::tokenize(&self.tokenizer, texts)?;
        let n = enc.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut last = Vec::with_capacity(n);
        for (row, e) in enc.iter().enumerate() {
            if let Some(bad) = e.get_ids().iter().find(|&&t| t as usize >= self.shape.vocab_size) {
                return Err(Error::Tokenizer(format!(
                    "token id {bad} is outside the model's vocabulary of {}",
                    self.shape.vocab_size
                )));
            }
            ids.extend(e.get_ids().iter().copied());
            // the end-of-text token is the last attended one (causal attention: padding
            // after it cannot change it)
            let attended = e.get_attention_mask().iter().filter(|&&m| m == 1).count().max(1);
            last.push((row * len + attended - 1) as u32);
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let hidden = self.towers.text.forward_with_mask(&ids, usize::MAX)?; // (n, len, d)
        let d = self.shape.text_hidden;
        let pooled = hidden.reshape((n * len, d))?.index_select(&Tensor::from_vec(last, n, &self.device)?, 0)?;
        Ok((l2_rows(&self.towers.text_projection.forward(&pooled)?)?, stats))
    }
}

impl ImageEncoder for ClipEncoder {
    fn id(&self) -> String {
        format!("{}/image", self.id)
    }

    fn dim(&self) -> usize {
        self.shape.projection_dim
    }

    fn encode_images(&self, images: &[image::DynamicImage]) -> Result<Vec<f32>> {
        let pixels: Vec<Vec<f32>> = images.iter().map(|i| self.preprocess.pixels_of(i)).collect();
        self.encode_pixels(&pixels)
    }
}

/// Writes a CLIP checkpoint of `shape` into `dir`: `model.safetensors` with the tensor
/// names and shapes of Hugging Face's `CLIPModel` and seeded random values (normal, σ =
/// 1/√fan-in for weights and 0.02 for embeddings; layer norms at identity), `config.json`,
/// `preprocessor_config.json`, and a CLIP style byte-level BPE `tokenizer.json` (the 512 byte symbols, start/end of text, no merges;
/// `shape.vocab_size` must be at least 514).
pub fn write_random_checkpoint(dir: &Path, shape: &ClipShape, seed: u64) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| Error::ModelFile { path: p.into(), message: e.to_string() };
    if shape.vocab_size < 514 {
        return Err(Error::ModelFile { path: dir.into(), message: "vocab_size must be at least 514".into() });
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    build(&vb, shape)?;
    vb.pp("vision_model").pp("embeddings").get(shape.vision_hidden, "class_embedding")?;
    let mut rng = Rng::new(seed);
    let vars = varmap.data().lock().map_err(|_| Error::Tokenizer("poisoned var map".into()))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for name in names {
        let var = &vars[name];
        let n = var.elem_count();
        let is_norm = name.contains("layer_norm") || name.contains("layrnorm") || name.contains("layernorm");
        let values: Vec<f32> = if is_norm && name.ends_with(".weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            // linear and convolution weights: σ = 1/√fan_in, so that activations keep their
            // scale through the layers; embeddings: σ = 0.02 (Hugging Face's initialiser)
            let dims = var.dims();
            let sigma = if dims.len() >= 2 && !name.contains("embedding.") {
                1.0 / ((n / dims[0]) as f32).sqrt()
            } else if name.ends_with("class_embedding") {
                1.0 / (n as f32).sqrt()
            } else {
                0.02
            };
            (0..n).map(|_| sigma * rng.normal_f32()).collect()
        };
        tensors.insert(name.clone(), Tensor::from_vec(values, var.shape(), &device)?);
    }
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors.into_iter().collect(), &weights)?;
    let write = |name: &str, v: serde_json::Value| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap_or_default()).map_err(|e| io(&p, e))
    };
    write("config.json", shape.to_config())?;
    let pre = ImagePreprocess { size: shape.image_size, ..Default::default() };
    write(
        "preprocessor_config.json",
        serde_json::json!({
            "crop_size": shape.image_size, "size": shape.image_size, "do_center_crop": true, "do_normalize": true,
            "do_resize": true, "image_mean": pre.mean, "image_std": pre.std, "resample": 3
        }),
    )?;
    write("tokenizer.json", byte_level_clip_tokenizer())
}

/// A CLIP-style tokenizer definition: lower-casing, whitespace cleaning, byte-level BPE with
/// the `</w>` end-of-word suffix, `<|startoftext|>` … `<|endoftext|>` around every text.
fn byte_level_clip_tokenizer() -> serde_json::Value {
    // GPT-2's byte → printable character table.
    let mut bytes: Vec<u32> = (b'!'..=b'~').chain(0xA1..=0xAC).chain(0xAE..=0xFF).map(u32::from).collect();
    let mut chars: Vec<u32> = bytes.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let symbols: Vec<String> = chars.iter().map(|&c| char::from_u32(c).unwrap_or('?').to_string()).collect();
    let mut vocab = serde_json::Map::new();
    for (i, s) in symbols.iter().enumerate() {
        vocab.insert(s.clone(), i.into());
    }
    for (i, s) in symbols.iter().enumerate() {
        vocab.insert(format!("{s}</w>"), (256 + i).into());
    }
    vocab.insert("<|startoftext|>".into(), 512.into());
    vocab.insert("<|endoftext|>".into(), 513.into());
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(512, "<|startoftext|>"), special(513, "<|endoftext|>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex":
                "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 513], "cls": ["<|startoftext|>", 512],
            "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": []}
    })
}
