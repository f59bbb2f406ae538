//! What can go wrong in inference, each with a reason a person can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(
        "the ONNX Runtime library was not found at {}: run scripts/setup to fetch it, or set ORT_DYLIB_PATH \
         (--ort-dylib-path) to a libonnxruntime.so of version 1.24 or newer",
        path.display()
    )]
    LibraryMissing { path: PathBuf },
    #[error(
        "cannot load the ONNX Runtime library {}: {reason}; run scripts/setup to fetch a working one, or set \
         ORT_DYLIB_PATH (--ort-dylib-path) to a libonnxruntime.so of version 1.24 or newer",
        path.display()
    )]
    LibraryLoad { path: PathBuf, reason: String },
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("cannot make the inference graph of model {model}: {reason}")]
    Export { model: String, reason: String },
    #[error("model {model} sees {expected} slices at a time, but was given windows of {found}")]
    WrongSlices { model: String, expected: usize, found: usize },
    #[error(transparent)]
    Window(#[from] crate::science::window::WindowError),
    #[error("the network returned non-finite values")]
    NotFinite,
    #[error("the inference thread failed: {0}")]
    Panicked(String),
    #[error("the inference engine has stopped")]
    Stopped,
    #[error("cannot start the inference thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl InferenceError {
    /// Wraps any ONNX Runtime error (session building, running, reading outputs).
    pub fn runtime(err: impl std::fmt::Display) -> Self {
        Self::Runtime(err.to_string())
    }
}
