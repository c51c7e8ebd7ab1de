//! Link settings for the native evaluator.
//!
//! With the `tch` feature, the `reprobox-eval` binary links libtorch from the PyTorch wheel that `scripts/setup`
//! installs. Two things must hold for it to run without `LD_LIBRARY_PATH` and with CUDA when a GPU
//! is present (see docs/references.md K§3.3, tch-rs issues #177, #907, #980):
//! - an rpath to libtorch's `lib/` directory;
//! - `--no-as-needed`, so the linker keeps `libtorch_cuda.so` even though no symbol is used directly.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    // torch-sys declares `links = "tch"` and prints `cargo:libtorch_lib=<dir>`; cargo hands it to us
    // as DEP_TCH_LIBTORCH_LIB because we depend on torch-sys directly.
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(lib) => {
            // `.libtorch` is a link inside the checkout; point the rpath at the real directory so
            // the binary keeps working when copied out of the checkout.
            let lib = std::fs::canonicalize(&lib)
                .map(|p| p.display().to_string())
                .unwrap_or(lib);
            // The rpath is harmless where libtorch is not linked; test binaries that call the
            // evaluator need it. Only `reprobox-eval` forces libtorch (and libtorch_cuda) in:
            // `reprobox` itself must start without loading it.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
            println!("cargo:rustc-link-arg-bin=reprobox-eval=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg-bin=reprobox-eval=-ltorch");
        }
        Err(_) => println!(
            "cargo:warning=torch-sys did not report its libtorch directory; the binary will need LD_LIBRARY_PATH"
        ),
    }
}
