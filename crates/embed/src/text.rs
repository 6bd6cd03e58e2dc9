//! Sentence encoder: BERT in Hugging Face format, mean pooling with the attention mask,
//! L2-normalised output.

use std::path::Path;

use crate::bert::{Bert, BertConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{read_json, Error, Result, TextEncoder};

/// Counts of an encoding call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// Texts encoded.
    pub texts: usize,
    /// Texts longer than the model's window (cut to fit).
    pub truncated: usize,
    /// Empty texts (encoded as the empty sentence).
    pub empty: usize,
}

/// A BERT-family sentence encoder.
pub struct SentenceEncoder {
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    max_len: usize,
    id: String,
}

impl SentenceEncoder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir`. `id` names
    /// the model in caches (e.g. `minilm`).
    pub fn load(dir: &Path, id: &str) -> Result<SentenceEncoder> {
        let config_path = dir.join("config.json");
        let config: BertConfig = serde_json::from_value(read_json(&config_path)?)
            .map_err(|e| Error::ModelFile { path: config_path.clone(), message: format!("not a BERT config: {e}") })?;
        let (dim, max_pos) = (config.hidden_size, config.max_position_embeddings);
        // sentence-transformers' window, when the model says it
        let max_len = read_json(&dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|v| v["max_seq_length"].as_u64())
            .map(|v| v as usize)
            .unwrap_or(128)
            .min(max_pos);
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(Error::ModelFile { path: weights, message: "not found".into() });
        }
        let device = Device::Cpu;
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&weights), DType::F32, &device) }
            .map_err(|e| Error::Checkpoint { path: weights.clone(), message: e.to_string() })?;
        let model =
            Bert::load(vb, &config).map_err(|e| Error::Checkpoint { path: weights.clone(), message: e.to_string() })?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| Error::ModelFile { path: tok_path.clone(), message: e.to_string() })?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(SentenceEncoder { model, tokenizer, device, dim, max_len, id: id.to_string() })
    }
}

impl TextEncoder for SentenceEncoder {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn max_len(&self) -> usize {
        self.max_len
    }

    fn encode_texts(&self, texts: &[&str]) -> Result<(Vec<f32>, EncodeStats)> {
        if texts.is_empty() {
            return Ok((Vec::new(), EncodeStats::default()));
        }
        let (enc, stats, len) = crate::tokenize(&self.tokenizer, texts)?;
        let n = enc.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &enc {
            ids.extend(e.get_ids().iter().map(|&x| x as i64));
            mask.extend(e.get_attention_mask().iter().map(|&x| x as i64));
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask_t = Tensor::from_vec(mask, (n, len), &self.device)?;
        let padded = enc.iter().any(|e| e.get_attention_mask().contains(&0));
        let hidden = self.model.forward(&ids, &mask_t, padded)?; // (n, len, dim)
        let m = mask_t.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (n, dim)
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let out = mean.broadcast_div(&norm)?;
        Ok((out.flatten_all()?.to_vec1::<f32>()?, stats))
    }
}

/// The text a product is embedded from: title, brand, category path and attributes.
pub fn product_text(
    title: &str,
    brand: Option<&str>,
    category: Option<&str>,
    description: Option<&str>,
    attributes: &[(String, String)],
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !title.is_empty() {
        parts.push(title.to_string());
    }
    if let Some(b) = brand.filter(|b| !b.is_empty()) {
        parts.push(format!("brand: {b}"));
    }
    if let Some(c) = category.filter(|c| !c.is_empty()) {
        parts.push(format!("category: {c}"));
    }
    let attrs: Vec<String> = attributes
        .iter()
        .filter(|(k, v)| !v.is_empty() && !matches!(k.as_str(), "source_id" | "url" | "release_date"))
        .map(|(_, v)| v.clone())
        .collect();
    if !attrs.is_empty() {
        parts.push(attrs.join(", "));
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        parts.push(d.to_string());
    }
    parts.join(". ")
}
