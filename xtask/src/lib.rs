//! Developer tasks for the Purser workspace (`cargo run -p xtask -- <task>`).
//!
//! The only task today is `codegen`, which turns the vendored botocore service models in
//! `model/` into the Rust sources under `crates/model/src/generated/`. The generator itself
//! lives in [`codegen`] so that the freshness test in `purser-model` can call it directly.

pub mod codegen;

use std::path::{Path, PathBuf};

/// The model files that feed the generator: `(module name, model files, generated file)`,
/// paths relative to the workspace root. Several files of one module are merged (the
/// data plane is the payment operations plus the workload access token operations of
/// the same `bedrock-agentcore` service).
pub const TARGETS: &[(&str, &[&str], &str)] = &[
    (
        "control",
        &["model/bedrock-agentcore-control-payments.json"],
        "crates/model/src/generated/control.rs",
    ),
    (
        "data",
        &[
            "model/bedrock-agentcore-payments.json",
            "model/bedrock-agentcore-identity.json",
        ],
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
    for (module, models, target) in TARGETS {
        let mut jsons = Vec::new();
        for model in *models {
            let model_path = root.join(model);
            jsons.push(
                std::fs::read_to_string(&model_path)
                    .map_err(|e| format!("reading {}: {e}", model_path.display()))?,
            );
        }
        let jsons: Vec<&str> = jsons.iter().map(String::as_str).collect();
        out.push((root.join(target), codegen::generate_merged(&jsons, module)));
    }
    Ok(out)
}
