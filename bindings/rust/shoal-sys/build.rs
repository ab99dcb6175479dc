//! Finds libshoal for the linker.
//!
//! In order: `$SHOAL_LIB_DIR` (a directory holding libshoal.so, e.g. a build tree's
//! runtime/ directory); then `pkg-config --libs shoal` (the installed shoal.pc; set
//! `PKG_CONFIG_PATH` for a non-standard prefix); otherwise the linker's default search
//! path. `SHOAL_STATIC=1` links libshoal.a instead of the shared library.
use std::env;
use std::process::Command;

fn pkg_config_dirs() -> Option<Vec<String>> {
    let out = Command::new("pkg-config").args(["--libs-only-L", "shoal"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.split_whitespace().filter_map(|a| a.strip_prefix("-L")).map(String::from).collect())
}

fn main() {
    println!("cargo:rerun-if-env-changed=SHOAL_LIB_DIR");
    println!("cargo:rerun-if-env-changed=SHOAL_STATIC");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let dirs = match env::var("SHOAL_LIB_DIR") {
        Ok(dir) if !dir.is_empty() => vec![dir],
        _ => pkg_config_dirs().unwrap_or_default(),
    };
    for dir in &dirs {
        println!("cargo:rustc-link-search=native={dir}");
    }
    if let Some(dir) = dirs.first() {
        println!("cargo:lib_dir={dir}"); // DEP_SHOAL_LIB_DIR for dependents
    }
    if env::var("SHOAL_STATIC").map(|v| v == "1").unwrap_or(false) {
        println!("cargo:rustc-link-lib=static=shoal");
        println!("cargo:rustc-link-lib=dylib=pthread");
    } else {
        println!("cargo:rustc-link-lib=dylib=shoal");
    }
}
