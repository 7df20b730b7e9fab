//! The one error type of csrgate-hooks.

/// What can go wrong loading or calling plugins. Every variant names the plugin involved.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The plugin could not be loaded: unreadable file, not a component, wrong contract, or its
    /// `init` refused the configuration.
    #[error("plugin {plugin}: cannot load: {reason}")]
    Load {
        /// Plugin name from the configuration.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The plugin trapped, ran past its deadline, hit its memory limit or failed `init` during a
    /// call. The request fails closed.
    #[error("plugin {plugin} failed: {reason}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// What happened (trap message, "deadline exceeded", ...).
        reason: String,
    },
    /// A presign plugin returned an error instead of a template.
    #[error("plugin {plugin} refused to produce a template: {reason}")]
    PresignRefused {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        reason: String,
    },
    /// A presign plugin returned a template the host does not accept.
    #[error("plugin {plugin} returned an invalid template: {reason}")]
    InvalidTemplate {
        /// Plugin name.
        plugin: String,
        /// What the host's check refused.
        reason: String,
    },
    /// The engine could not be set up.
    #[error("plugin engine: {0}")]
    Engine(String),
}

impl HookError {
    /// The plugin the error is about, if any.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            HookError::Load { plugin, .. }
            | HookError::Failed { plugin, .. }
            | HookError::PresignRefused { plugin, .. }
            | HookError::InvalidTemplate { plugin, .. } => Some(plugin),
            HookError::Engine(_) => None,
        }
    }
}
