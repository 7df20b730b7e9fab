//! Configuration generations: everything a SIGHUP can change (signing policy, issuance rules,
//! admin tokens, plugins, TLS material) as one immutable [`Generation`], swapped whole.
//!
//! A request takes the current generation once and uses it for every stage, so a reload never
//! changes anything under a request in flight: it finishes on the generation it started with,
//! and no request ever sees the new policy with the old plugins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use csrgate_hooks::{CallObserver, PluginSet};
use csrgate_pki::SigningPolicy;

use crate::admin::AdminTokens;
use crate::est::EstCredentials;
use crate::issuance::IssuancePolicy;
use crate::tls::TlsMaterial;

/// One generation of the reloadable configuration (1 at start-up, +1 per successful reload).
#[derive(Debug)]
pub struct Generation {
    number: u64,
    /// Rules for every leaf certificate.
    pub signing: SigningPolicy,
    /// Which names, keys and validity each client hash may have.
    pub issuance: IssuancePolicy,
    /// Who may use the admin API.
    pub admin: AdminTokens,
    /// Who may enroll over EST.
    pub est: EstCredentials,
    /// ACME's settings and External Account Binding keys.
    pub acme: crate::AcmeConfig,
    /// The plugin set, in configuration order.
    pub plugins: Arc<PluginSet>,
    /// `open_issuance = true`: the operator accepted that nothing restricts issuance.
    pub open_issuance: bool,
    /// The TLS certificate, key and client CA of the TLS listeners, when there are any.
    pub tls: Option<Arc<TlsMaterial>>,
}

/// The parts of a generation, as loaded from the configuration.
#[derive(Debug)]
pub struct GenerationParts {
    /// Rules for every leaf certificate.
    pub signing: SigningPolicy,
    /// The `[[issuance]]` rules.
    pub issuance: IssuancePolicy,
    /// Admin tokens.
    pub admin: AdminTokens,
    /// EST credentials.
    pub est: EstCredentials,
    /// ACME's settings and EAB keys.
    pub acme: crate::AcmeConfig,
    /// Loaded plugins.
    pub plugins: PluginSet,
    /// `open_issuance`.
    pub open_issuance: bool,
    /// TLS material, loaded.
    pub tls: Option<TlsMaterial>,
}

impl Generation {
    /// The generation number: 1 at start-up, +1 per successful reload.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// True when neither an issuance rule nor an authorize plugin restricts who gets what.
    pub fn issuance_is_open(&self) -> bool {
        self.issuance.is_empty() && !self.plugins.has_authorize()
    }
}

/// The current generation, swapped atomically.
pub struct Generations {
    current: RwLock<Arc<Generation>>,
    next_number: AtomicU64,
    observer: Option<Arc<dyn CallObserver>>,
}

impl std::fmt::Debug for Generations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generations")
            .field("current", &self.current())
            .finish_non_exhaustive()
    }
}

impl Generations {
    /// Starts with `parts` as generation 1; this and every later plugin set report their calls
    /// to `observer` (the daemon's metrics) when given.
    pub fn new(parts: GenerationParts, observer: Option<Arc<dyn CallObserver>>) -> Self {
        let generations = Generations {
            current: RwLock::new(Arc::new(Generation {
                number: 0,
                signing: SigningPolicy::default(),
                issuance: IssuancePolicy::default(),
                admin: AdminTokens::default(),
                est: EstCredentials::default(),
                acme: crate::AcmeConfig::default(),
                plugins: Arc::new(PluginSet::empty()),
                open_issuance: false,
                tls: None,
            })),
            next_number: AtomicU64::new(1),
            observer,
        };
        generations.install(parts);
        generations
    }

    /// The generation requests use now; take it once per request.
    pub fn current(&self) -> Arc<Generation> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `parts` the current generation, whole; requests already running keep theirs.
    /// Returns the new generation's number.
    pub fn install(&self, parts: GenerationParts) -> u64 {
        let plugins = match &self.observer {
            Some(observer) => parts.plugins.with_observer(Arc::clone(observer)),
            None => parts.plugins,
        };
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Numbered under the lock, so numbers and installation order agree.
        let number = self.next_number.fetch_add(1, Ordering::SeqCst);
        *guard = Arc::new(Generation {
            number,
            signing: parts.signing,
            issuance: parts.issuance,
            admin: parts.admin,
            est: parts.est,
            acme: parts.acme,
            plugins: Arc::new(plugins),
            open_issuance: parts.open_issuance,
            tls: parts.tls.map(Arc::new),
        });
        number
    }
}
