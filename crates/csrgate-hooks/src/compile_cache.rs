//! Compiled plugin code cached on disk, keyed by the wasm's SHA-256 and the engine's
//! compatibility hash, so a restart or reload does not recompile. A cached file is only loaded if
//! it sits in a directory only we can write (0700) and the file itself is not writable by others:
//! deserializing compiled code trusts it completely.

use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles `wasm`, or loads the cached compilation of the same bytes by the same engine.
pub(crate) fn component(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = cache_dir else {
        return Ok((Component::new(engine, wasm)?, false));
    };
    let path = entry_path(engine, wasm, dir);
    if trusted(dir, &path) {
        match deserialize(engine, &path) {
            Ok(component) => return Ok((component, true)),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring unusable compiled plugin cache entry")
            }
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Err(error) = store(dir, &path, &component.serialize()?) {
        tracing::warn!(dir = %dir.display(), %error, "cannot write the compiled plugin cache");
    }
    Ok((component, false))
}

fn entry_path(engine: &Engine, wasm: &[u8], dir: &Path) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let wasm_hash = hex::encode(Sha256::digest(wasm));
    dir.join(format!("{wasm_hash}-{:016x}.cwasm", hasher.finish()))
}

/// Whether `dir` is a compiled-code cache this process may use: a directory of mode 0700 owned
/// by the user running it. (`csrgate plugin run` run by root must neither load nor write the
/// daemon's cache.)
pub fn cache_dir_is_ours(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|meta| {
        meta.is_dir()
            && meta.permissions().mode() & 0o077 == 0
            && meta.uid() == rustix::process::geteuid().as_raw()
    })
}

fn trusted(dir: &Path, path: &Path) -> bool {
    let (Ok(dir_meta), Ok(file_meta)) = (std::fs::metadata(dir), std::fs::symlink_metadata(path))
    else {
        return false;
    };
    // Owned by the user running this process: root running `csrgate plugin run` must not load
    // native code a service account wrote.
    let me = rustix::process::geteuid().as_raw();
    dir_meta.permissions().mode() & 0o077 == 0
        && dir_meta.uid() == me
        && file_meta.is_file()
        && file_meta.permissions().mode() & 0o022 == 0
        && file_meta.uid() == me
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `trusted` established that the file lives in our private (0700) cache directory,
    // is owned by the directory's owner and writable by nobody else, so it holds what
    // `Component::serialize` wrote for this engine configuration (the name carries the engine's
    // compatibility hash, and wasmtime checks its own header again).
    unsafe { Component::deserialize_file(engine, path) }
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
