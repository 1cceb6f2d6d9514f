//! Link-time layout of the release binary, for an idle instance's memory
//! (idle RSS in BENCHMARKS.md). Only for release builds of the `reelay`
//! binary linked by LLD (Rust's default linker for x86_64-unknown-linux-gnu
//! since 1.90):
//!
//! - the functions that run at start-up and while idle are laid out together
//!   (`link/text.order`, made by `bench/text_order.py`; a name the build
//!   does not have is skipped), so the pages they touch are most of what the
//!   kernel maps of the binary's code: scattered over 11 MB, they made its
//!   64 KiB read-around map 6 MB;
//! - relative relocations are packed (RELR), where the building machine's
//!   glibc can load them (2.36 and later): the loader reads ~10 KiB of them
//!   at start, not ~390 KiB. `REELAY_TEXT_ORDER=off` builds without both.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/text.order");
    println!("cargo:rerun-if-env-changed=REELAY_TEXT_ORDER");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let lld_target = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    let wanted = std::env::var("REELAY_TEXT_ORDER").as_deref() != Ok("off");
    if !(release && lld_target && wanted) {
        return;
    }
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/text.order");
    if order.exists() {
        println!("cargo:rustc-link-arg-bin=reelay=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bin=reelay=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bin=reelay=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether this machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36")
/// is at least `major.minor`; false when it cannot tell.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}
