//! The ONNX Runtime library, loaded at run time from a path (ort's `load-dynamic`), and the
//! one ONNX Runtime environment a process may have.
//!
//! The library comes from the `onnxruntime` wheel on PyPI (`scripts/setup` puts it at
//! [`DEFAULT_ORT_DYLIB_PATH`]); `ORT_DYLIB_PATH` names another, e.g. the one of
//! `onnxruntime-gpu`. A missing or unloadable library is an error naming the path and the
//! fix, never a panic: the path is checked before ort sees it, and `ort::init_from` is
//! used rather than `ort::init`, which panics.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use super::error::InferenceError;

/// Where `scripts/setup` puts the library, relative to the repository (and working) directory.
pub const DEFAULT_ORT_DYLIB_PATH: &str = "runtime/onnxruntime/libonnxruntime.so.1.31.1";

/// ONNX Runtime allows one environment per process, and ort keeps the first library it
/// loaded: both are shared by every engine the process starts.
static LOADED: Mutex<Option<LoadedRuntime>> = Mutex::new(None);

#[derive(Clone)]
struct LoadedRuntime {
    path: PathBuf,
    version: String,
    environment: Environment,
}

/// A loaded ONNX Runtime: the environment sessions are built in, and where it came from.
#[derive(Clone)]
pub struct OrtRuntime {
    pub environment: Environment,
    /// Absolute path of the library loaded.
    pub path: PathBuf,
    /// Its version string, e.g. `1.31.1`.
    pub version: String,
}

impl std::fmt::Debug for OrtRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtRuntime").field("path", &self.path).field("version", &self.version).finish()
    }
}

/// Loads the library at `path` (relative paths are taken from the working directory) and
/// creates the process's ONNX Runtime environment, or returns the one already made.
pub fn load(path: &Path) -> Result<OrtRuntime, InferenceError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if !absolute.is_file() {
        return Err(InferenceError::LibraryMissing { path: absolute });
    }
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(runtime) = loaded.as_ref() {
        if runtime.path != absolute {
            tracing::warn!(
                loaded = %runtime.path.display(),
                requested = %absolute.display(),
                "ONNX Runtime is already loaded in this process; one library per process, so the loaded one is used"
            );
        }
        return Ok(OrtRuntime {
            environment: runtime.environment.clone(),
            path: runtime.path.clone(),
            version: runtime.version.clone(),
        });
    }
    let load_error = |reason: String| InferenceError::LibraryLoad { path: absolute.clone(), reason };
    let environment = ort::init_from(&absolute)
        .map_err(|err| load_error(err.to_string()))?
        .with_name("petal")
        .with_telemetry(false)
        .build()
        .map_err(|err| load_error(err.to_string()))?;
    // ONNX Runtime's own log (forwarded to `tracing`) is very chatty at info level.
    environment.set_log_level(ort::logging::LogLevel::Warning);
    let version = library_version(&absolute);
    tracing::info!(path = %absolute.display(), version, "loaded ONNX Runtime");
    let runtime = LoadedRuntime { path: absolute, version, environment };
    *loaded = Some(runtime.clone());
    Ok(OrtRuntime { environment: runtime.environment, path: runtime.path, version: runtime.version })
}

/// The version in the library's file name (`libonnxruntime.so.1.31.1` → `1.31.1`), or
/// "unknown version" for a name without one.
fn library_version(path: &Path) -> String {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.split_once(".so."))
        .map(|(_, version)| version.to_owned())
        .unwrap_or_else(|| "unknown version".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_an_error_that_says_what_to_do() {
        let err = load(Path::new("/nonexistent/libonnxruntime.so.1.31.1")).expect_err("missing");
        let message = err.to_string();
        assert!(matches!(err, InferenceError::LibraryMissing { .. }));
        assert!(message.contains("/nonexistent/libonnxruntime.so.1.31.1"), "{message}");
        assert!(message.contains("scripts/setup") && message.contains("ORT_DYLIB_PATH"), "{message}");
    }

    #[test]
    fn versions_come_from_file_names() {
        assert_eq!(library_version(Path::new("/x/libonnxruntime.so.1.31.1")), "1.31.1");
        assert_eq!(library_version(Path::new("/x/libonnxruntime.so")), "unknown version");
    }
}
