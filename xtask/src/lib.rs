//! Developer tasks for the Purser workspace (`cargo run -p xtask -- <task>`).
//!
//! The only task today is `codegen`, which turns the vendored botocore service models in
//! `model/` into the Rust sources under `crates/model/src/generated/`. The generator itself
//! lives in [`codegen`] so that the freshness test in `purser-model` can call it directly.

pub mod codegen;

use std::path::{Path, PathBuf};

/// The model files that feed the generator: `(module name, model file, generated file)`,
/// paths relative to the workspace root.
pub const TARGETS: &[(&str, &str, &str)] = &[
    (
        "control",
        "model/bedrock-agentcore-control-payments.json",
        "crates/model/src/generated/control.rs",
    ),
    (
        "data",
        "model/bedrock-agentcore-payments.json",
        "crates/model/src/generated/data.rs",
    ),
];

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Generates every target and returns `(generated file path, contents)` pairs.
pub fn generate_all(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut out = Vec::new();
    for (module, model, target) in TARGETS {
        let model_path = root.join(model);
        let json = std::fs::read_to_string(&model_path)
            .map_err(|e| format!("reading {}: {e}", model_path.display()))?;
        out.push((root.join(target), codegen::generate(&json, module)));
    }
    Ok(out)
}
