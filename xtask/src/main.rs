use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- <task>

tasks:
  codegen          regenerate crates/model/src/generated/ from model/*.json
  codegen --check  fail if the committed generated files are stale";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn codegen(check: bool) -> ExitCode {
    let root = xtask::workspace_root();
    let files = match xtask::generate_all(&root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("codegen failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stale = false;
    for (path, contents) in files {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == contents {
            println!("up to date: {}", path.display());
            continue;
        }
        if check {
            eprintln!("stale: {}", path.display());
            stale = true;
            continue;
        }
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            eprintln!("creating {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::write(&path, contents) {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote: {}", path.display());
    }
    if stale {
        eprintln!("generated code is stale: run `cargo run -p xtask -- codegen`");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
