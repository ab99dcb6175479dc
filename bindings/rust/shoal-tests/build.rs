//! Generates the Rust code of the test schemas with `shoal gen --lang rust` into
//! OUT_DIR. The shoal command is `$SHOAL_CLI`, else `shoal` on the PATH; the schemas
//! are found from `$SHOAL_SOURCE_DIR` (default: the repository holding this crate).
//! Without a shoal command the crate builds with cfg `shoal_no_gen` and its tests of
//! generated code say they were skipped.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shoal_no_gen)");
    // The programs find the libshoal they were linked with without LD_LIBRARY_PATH.
    if let Ok(dir) = env::var("SHOAL_LIB_DIR") {
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
    for v in ["SHOAL_LIB_DIR", "SHOAL_CLI", "SHOAL_SOURCE_DIR", "SHOAL_PLUGIN", "SHOAL_PROTOC"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let src = env::var("SHOAL_SOURCE_DIR").map(PathBuf::from).unwrap_or_else(|_| manifest.join("../../.."));
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let cli = env::var("SHOAL_CLI").unwrap_or_else(|_| "shoal".into());
    // Regenerate when the compiler is rebuilt.
    for tool in [Some(cli.clone()), env::var("SHOAL_PLUGIN").ok()].into_iter().flatten() {
        if tool.contains('/') {
            println!("cargo:rerun-if-changed={tool}");
        }
    }
    let codegen = src.join("tests/codegen/proto");
    let interop = src.join("tests/interop");
    let rpc = src.join("tests/rpc/proto");
    let runs: [(PathBuf, Vec<PathBuf>); 4] = [
        (src.join("examples/orders"), vec![src.join("examples/orders/orders.proto")]),
        (
            codegen.clone(),
            ["features.proto", "common.proto", "features2.proto"].map(|f| codegen.join(f)).to_vec(),
        ),
        (
            interop.clone(),
            ["orders_v2.proto", "tally.proto", "encoded_note.proto", "encoded2.proto"]
                .map(|f| interop.join(f))
                .to_vec(),
        ),
        (rpc.clone(), vec![rpc.join("svct.proto")]),
    ];
    for (dir, files) in &runs {
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
        }
        let status = Command::new(&cli)
            .args(["gen", "--lang", "rust", "-I"])
            .arg(dir)
            .arg("-o")
            .arg(&out)
            .args(files)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{cli} gen --lang rust failed ({s}) on {files:?}"),
            Err(e) => {
                println!(
                    "cargo:warning=shoal-tests: cannot run {cli} ({e}): set SHOAL_CLI; generated-code tests skipped"
                );
                println!("cargo:rustc-cfg=shoal_no_gen");
                return;
            }
        }
    }
}
