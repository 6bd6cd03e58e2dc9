//! The progress bar importers report to: indicatif's with the default `progress` feature; a
//! no-op without it (the browser extension's WebAssembly build, where indicatif's clock
//! would need wasm-bindgen's JavaScript glue).

#[cfg(feature = "progress")]
pub use indicatif::ProgressBar;

/// A progress bar that shows nothing.
#[cfg(not(feature = "progress"))]
#[derive(Debug, Clone, Default)]
pub struct ProgressBar;

#[cfg(not(feature = "progress"))]
impl ProgressBar {
    /// A bar that draws nothing.
    pub fn hidden() -> ProgressBar {
        ProgressBar
    }
    /// Advances by `n`.
    pub fn inc(&self, _n: u64) {}
    /// Sets the message.
    pub fn set_message(&self, _m: impl Into<std::borrow::Cow<'static, str>>) {}
}
