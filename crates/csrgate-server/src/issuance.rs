//! The built-in issuance policy: which names, keys and validity each client hash may have, from
//! `[[issuance]]` rules in the configuration, so the common case needs no authorize plugin
//! (Vault's roles with `allowed_domains`, step-ca's provisioner policies).
//!
//! It runs after intake (the CSR is parsed and its names are well-formed) and before the
//! authorize plugins. Every rule list is an allow-list: a rule that lists no DNS names allows no
//! DNS name. A refusal is 403 `denied`, `denied_by = "issuance:<rule>"`, naming the offending
//! value.

use std::net::IpAddr;

use csrgate_pki::{KeyAlgorithm, PublicKeyInfo, SubjectAltName, ValidatedCsr, ValidityPeriod};
use ipnet::IpNet;

use crate::ClientHash;

/// One `[[issuance]]` rule: what the client hashes it covers may be issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuanceRule {
    /// Named in refusals and logs (`denied_by = "issuance:<name>"`).
    pub name: String,
    /// The client hashes this rule covers; `None`: every client hash no other rule names.
    pub clients: Option<Vec<ClientHash>>,
    /// DNS names allowed, each exact (`www.example.com`) or a suffix starting with `.`
    /// (`.example.internal` allows every name below it, not the bare domain). Compared
    /// case-insensitively (RFC 4343).
    pub dns: Vec<String>,
    /// Whether a DNS name may be a wildcard (`*.example.internal`, matched like any name).
    pub wildcards: bool,
    /// IP address ranges allowed for `iPAddress` SANs (and an IP in the CN).
    pub ip: Vec<IpNet>,
    /// E-mail domains allowed for `rfc822Name` SANs (the part after `@`, exact, case-insensitive).
    pub email_domains: Vec<String>,
    /// URI prefixes allowed for `uniformResourceIdentifier` SANs, e.g. `spiffe://example.org/`.
    pub uri_prefixes: Vec<String>,
    /// Key algorithms allowed; `None`: every algorithm intake accepts.
    pub key_types: Option<Vec<KeyAlgorithm>>,
    /// The smallest RSA modulus allowed, in bits (intake's floor is 2048).
    pub min_rsa_bits: u32,
    /// The longest validity this rule issues: longer default validities are shortened to it,
    /// longer explicit ones (renewals, presign plugins) are refused.
    pub max_validity: Option<ValidityPeriod>,
}

/// The configured rules, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuancePolicy {
    rules: Vec<IssuanceRule>,
}

/// Why a request was refused: the rule (`None` when no rule covers the client hash) and what to
/// change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The rule that refused, or `None` when no rule covers the client hash.
    pub rule: Option<String>,
    /// The message for the requester, naming the offending value.
    pub reason: String,
}

impl Refusal {
    /// The `denied_by` of the answer: `issuance:<rule>`, or `issuance` when no rule covers the
    /// client hash.
    pub fn denied_by(&self) -> String {
        match &self.rule {
            Some(rule) => format!("issuance:{rule}"),
            None => "issuance".to_owned(),
        }
    }
}

impl IssuancePolicy {
    /// A policy from `rules`; the first rule listing a client hash wins over a rule without
    /// `clients`.
    pub fn new(rules: Vec<IssuanceRule>) -> Self {
        IssuancePolicy { rules }
    }

    /// The rules, in configuration order.
    pub fn rules(&self) -> &[IssuanceRule] {
        &self.rules
    }

    /// True when no rule is configured: the policy then allows everything (and `serve` refuses
    /// to start unless an authorize plugin or `open_issuance` says otherwise).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule that covers `client`: the first naming it, else the first without `clients`.
    pub fn rule_for(&self, client: &ClientHash) -> Option<&IssuanceRule> {
        self.rules
            .iter()
            .find(|rule| rule.clients.as_ref().is_some_and(|c| c.contains(client)))
            .or_else(|| self.rules.iter().find(|rule| rule.clients.is_none()))
    }

    /// Checks `csr` for `client`: every SAN, every common name a TLS client could match as a
    /// host (see [`host_names_in_common_names`]), and the key. `Ok` carries the rule's maximum
    /// validity (if any) for the template.
    pub fn check(
        &self,
        client: &ClientHash,
        csr: &ValidatedCsr,
    ) -> Result<Option<ValidityPeriod>, Refusal> {
        if self.is_empty() {
            return Ok(None);
        }
        let Some(rule) = self.rule_for(client) else {
            return Err(Refusal {
                rule: None,
                reason: format!(
                    "no issuance rule covers client hash {client}; ask the operator to add it to \
                     an [[issuance]] rule"
                ),
            });
        };
        let refuse = |reason: String| Refusal {
            rule: Some(rule.name.clone()),
            reason: format!("issuance rule {:?}: {reason}", rule.name),
        };
        rule.check_key(csr.public_key_info()).map_err(refuse)?;
        for name in csr.subject_alt_names() {
            rule.check_name(name).map_err(refuse)?;
        }
        for name in host_names_in_common_names(csr).map_err(refuse)? {
            if !csr.subject_alt_names().contains(&name) {
                rule.check_name(&name)
                    .map_err(|why| refuse(format!("the common name {why}")))?;
            }
        }
        Ok(rule.max_validity)
    }
}

/// The common names a TLS client could match as a host name or address, from every CN (a
/// subject may carry several; OpenSSL's `X509_check_host` tries each): an IP address and a
/// dotted DNS name always; a single label (`web01` matches host `web01`) when the request has
/// no DNS SAN, the only case where clients fall back to the CN (RFC 6125 6.4.4). A CN that
/// looks like a host but is not a valid name (`evil.example.`, `a..b`) is refused outright.
/// CNs with spaces ("Jane Doe") are labels no client matches.
fn host_names_in_common_names(csr: &ValidatedCsr) -> Result<Vec<SubjectAltName>, String> {
    let has_dns_san = csr
        .subject_alt_names()
        .iter()
        .any(|name| matches!(name, SubjectAltName::Dns(_)));
    let mut names = Vec::new();
    for cn in csr
        .subject()
        .attributes()
        .filter(|attribute| attribute.oid == COMMON_NAME)
        .map(|attribute| attribute.value.as_str())
    {
        if let Ok(ip) = cn.parse::<IpAddr>() {
            names.push(SubjectAltName::Ip(ip));
        } else {
            match SubjectAltName::dns(cn) {
                // A dotted name always (the CA/Browser Forum wants the CN among the SANs, and
                // some clients still try it); a single label when no DNS SAN exists.
                Ok(name) if cn.contains('.') || !has_dns_san => names.push(name),
                Ok(_) => {}
                Err(_) if !cn.contains(char::is_whitespace) && cn.contains('.') => {
                    return Err(format!(
                        "the common name {cn:?} looks like a host name but is not a valid one"
                    ));
                }
                Err(_) => {}
            }
        }
    }
    Ok(names)
}

/// The commonName attribute type (X.520), as `NameAttribute::oid` spells it.
const COMMON_NAME: &str = "2.5.4.3";

impl IssuanceRule {
    fn check_key(&self, key: PublicKeyInfo) -> Result<(), String> {
        if let Some(allowed) = &self.key_types
            && !allowed.contains(&key.algorithm)
        {
            let names: Vec<&str> = allowed.iter().map(|a| a.name()).collect();
            return Err(format!(
                "the key is {key}; allowed key types are {}",
                names.join(", ")
            ));
        }
        if key.algorithm == KeyAlgorithm::Rsa && key.bits < self.min_rsa_bits {
            return Err(format!(
                "the key is {key}; RSA keys need at least {} bits",
                self.min_rsa_bits
            ));
        }
        Ok(())
    }

    fn check_name(&self, name: &SubjectAltName) -> Result<(), String> {
        let allowed = match name {
            SubjectAltName::Dns(dns) => {
                if dns.starts_with("*.") && !self.wildcards {
                    return Err(format!("wildcard {dns:?} is not allowed"));
                }
                self.dns.iter().any(|pattern| dns_matches(pattern, dns))
            }
            // An IPv4-mapped IPv6 address is its IPv4 address to most verifiers (Go's
            // net.IP.Equal): it is matched as that.
            SubjectAltName::Ip(ip) => {
                let ip = ip.to_canonical();
                self.ip.iter().any(|net| net.contains(&ip))
            }
            SubjectAltName::Email(address) => {
                address.rsplit_once('@').is_some_and(|(_, domain)| {
                    self.email_domains
                        .iter()
                        .any(|allowed| allowed.eq_ignore_ascii_case(domain))
                })
            }
            SubjectAltName::Uri(uri) => self
                .uri_prefixes
                .iter()
                .any(|prefix| uri.starts_with(prefix.as_str())),
        };
        if allowed {
            Ok(())
        } else {
            Err(format!("{name} is not allowed"))
        }
    }
}

/// `pattern` is an exact name or a `.suffix`; a wildcard name matches like its own text
/// (`*.a.example` is below `.example` and equal to the exact pattern `*.a.example`).
fn dns_matches(pattern: &str, name: &str) -> bool {
    if pattern.starts_with('.') {
        name.len() > pattern.len()
            && name.as_bytes()[name.len() - pattern.len()..]
                .eq_ignore_ascii_case(pattern.as_bytes())
    } else {
        pattern.eq_ignore_ascii_case(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::stack::Stack;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509NameBuilder, X509ReqBuilder};

    enum Key {
        P256,
        Rsa(u32),
    }

    fn csr(cn: &str, sans: &[&str], key: Key) -> ValidatedCsr {
        let pkey = match key {
            Key::P256 => PKey::from_ec_key(
                EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group"))
                    .expect("ec"),
            )
            .expect("pkey"),
            Key::Rsa(bits) => PKey::from_rsa(Rsa::generate(bits).expect("rsa")).expect("pkey"),
        };
        let mut builder = X509ReqBuilder::new().expect("builder");
        let mut name = X509NameBuilder::new().expect("name");
        for cn in cn.split('|') {
            name.append_entry_by_text("CN", cn).expect("cn");
        }
        builder.set_subject_name(&name.build()).expect("subject");
        builder.set_pubkey(&pkey).expect("key");
        if !sans.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for entry in sans {
                match entry.split_once(':').expect("TYPE:value") {
                    ("DNS", v) => san.dns(v),
                    ("IP", v) => san.ip(v),
                    ("email", v) => san.email(v),
                    ("URI", v) => san.uri(v),
                    other => panic!("{other:?}"),
                };
            }
            let extension = san
                .build(&builder.x509v3_context(None))
                .expect("san extension");
            let mut stack = Stack::new().expect("stack");
            stack.push(extension).expect("push");
            builder.add_extensions(&stack).expect("extensions");
        }
        builder.sign(&pkey, MessageDigest::sha256()).expect("sign");
        ValidatedCsr::parse(&builder.build().to_der().expect("der")).expect("valid CSR")
    }

    fn hash(text: &str) -> ClientHash {
        ClientHash::parse(text).expect("client hash")
    }

    fn policy() -> IssuancePolicy {
        IssuancePolicy::new(vec![
            IssuanceRule {
                name: "web".into(),
                clients: Some(vec![hash("web01")]),
                dns: vec!["www.example.com".into(), ".web.example.internal".into()],
                wildcards: false,
                ip: vec!["10.1.0.0/16".parse().expect("net")],
                email_domains: vec![],
                uri_prefixes: vec![],
                key_types: Some(vec![KeyAlgorithm::EcP256, KeyAlgorithm::Rsa]),
                min_rsa_bits: 3072,
                max_validity: Some(ValidityPeriod::days(30)),
            },
            IssuanceRule {
                name: "mesh".into(),
                clients: None,
                dns: vec![".svc.example.internal".into()],
                wildcards: true,
                ip: vec!["fd00::/8".parse().expect("net")],
                email_domains: vec!["Example.COM".into()],
                uri_prefixes: vec!["spiffe://example.org/".into()],
                key_types: None,
                min_rsa_bits: 2048,
                max_validity: None,
            },
        ])
    }

    /// (client, CN, SANs, expected: Ok or the rule and a fragment of the reason)
    #[test]
    fn each_rule_kind_allows_and_denies_the_right_names() {
        type Case = (
            &'static str,
            &'static str,
            &'static [&'static str],
            Result<(), (&'static str, &'static str)>,
        );
        let cases: &[Case] = &[
            ("web01", "www.example.com", &["DNS:www.example.com"], Ok(())),
            ("web01", "Jane Doe", &["DNS:WWW.Example.com"], Ok(())),
            (
                "web01",
                "Jane Doe",
                &["DNS:a.b.web.example.internal"],
                Ok(()),
            ),
            (
                "web01",
                "Jane Doe",
                &["DNS:web.example.internal"],
                Err(("web", "DNS:web.example.internal is not allowed")),
            ),
            (
                "web01",
                "Jane Doe",
                &["DNS:evilweb.example.internal"],
                Err(("web", "is not allowed")),
            ),
            (
                "web01",
                "Jane Doe",
                &["DNS:example.com"],
                Err(("web", "DNS:example.com")),
            ),
            (
                "web01",
                "Jane Doe",
                &["DNS:*.web.example.internal"],
                Err(("web", "wildcard")),
            ),
            ("web01", "Jane Doe", &["IP:10.1.200.3"], Ok(())),
            (
                "web01",
                "Jane Doe",
                &["IP:10.2.0.1"],
                Err(("web", "IP:10.2.0.1")),
            ),
            (
                "web01",
                "Jane Doe",
                &["email:ops@example.com"],
                Err(("web", "is not allowed")),
            ),
            (
                "web01",
                "evil.example.net",
                &["DNS:www.example.com"],
                Err(("web", "the common name")),
            ),
            (
                "web01",
                "10.9.9.9",
                &["DNS:www.example.com"],
                Err(("web", "the common name")),
            ),
            ("web01", "Jane Doe", &["DNS:www.example.com"], Ok(())),
            (
                "web01",
                "Jane Doe",
                &["IP:::ffff:10.2.0.1"],
                Err(("web", "IP:::ffff:10.2.0.1")),
            ),
            ("web01", "Jane Doe", &["IP:::ffff:10.1.0.1"], Ok(())),
            (
                "web01",
                "evil",
                &["IP:10.1.0.1"],
                Err(("web", "the common name DNS:evil")),
            ),
            (
                "web01",
                "web.example.internal.",
                &["IP:10.1.0.1"],
                Err(("web", "not a valid one")),
            ),
            ("web01", "evil", &["DNS:www.example.com"], Ok(())),
            (
                "other",
                "Jane Doe|evil.example.com",
                &["URI:spiffe://example.org/x"],
                Err(("mesh", "the common name DNS:evil.example.com")),
            ),
            (
                "other",
                "Jane Doe|a.svc.example.internal",
                &["URI:spiffe://example.org/x"],
                Ok(()),
            ),
            (
                "other",
                "Jane Doe",
                &["DNS:*.api.svc.example.internal"],
                Ok(()),
            ),
            ("other", "Jane Doe", &["IP:fd12::1"], Ok(())),
            (
                "other",
                "Jane Doe",
                &["IP:10.1.0.1"],
                Err(("mesh", "IP:10.1.0.1")),
            ),
            ("other", "Jane Doe", &["email:ops@example.com"], Ok(())),
            (
                "other",
                "Jane Doe",
                &["email:ops@example.com.evil"],
                Err(("mesh", "email")),
            ),
            (
                "other",
                "Jane Doe",
                &["URI:spiffe://example.org/ns/a/sa/b"],
                Ok(()),
            ),
            (
                "other",
                "Jane Doe",
                &["URI:spiffe://example.org.evil/x"],
                Err(("mesh", "URI")),
            ),
            (
                "other",
                "www.example.com",
                &[],
                Err(("mesh", "DNS:www.example.com")),
            ),
        ];
        let policy = policy();
        for (client, cn, sans, expected) in cases {
            let got = policy.check(&hash(client), &csr(cn, sans, Key::P256));
            match (expected, got) {
                (Ok(()), Ok(_)) => {}
                (Err((rule, fragment)), Err(refusal)) => {
                    assert_eq!(refusal.rule.as_deref(), Some(*rule), "{client} {sans:?}");
                    assert!(
                        refusal.reason.contains(fragment),
                        "{sans:?}: {}",
                        refusal.reason
                    );
                }
                (expected, got) => {
                    panic!("{client} {cn} {sans:?}: expected {expected:?}, got {got:?}")
                }
            }
        }
    }

    #[test]
    fn keys_and_validity_follow_the_rule() {
        let policy = policy();
        let small = policy
            .check(
                &hash("web01"),
                &csr("Jane Doe", &["DNS:www.example.com"], Key::Rsa(2048)),
            )
            .expect_err("2048 < 3072");
        assert!(small.reason.contains("at least 3072"), "{}", small.reason);
        let max = policy
            .check(
                &hash("web01"),
                &csr("Jane Doe", &["DNS:www.example.com"], Key::P256),
            )
            .expect("allowed");
        assert_eq!(max, Some(ValidityPeriod::days(30)));
        let only_ec = IssuancePolicy::new(vec![IssuanceRule {
            key_types: Some(vec![KeyAlgorithm::EcP384]),
            ..policy.rules[1].clone()
        }]);
        let refused = only_ec
            .check(
                &hash("a"),
                &csr("Jane Doe", &["DNS:a.svc.example.internal"], Key::P256),
            )
            .expect_err("P-256 not listed");
        assert!(refused.reason.contains("ec-p384"), "{}", refused.reason);
    }

    #[test]
    fn without_a_covering_rule_everything_is_refused() {
        let policy = IssuancePolicy::new(vec![policy().rules[0].clone()]);
        let refusal = policy
            .check(
                &hash("stranger"),
                &csr("Jane Doe", &["DNS:www.example.com"], Key::P256),
            )
            .expect_err("no rule");
        assert_eq!(refusal.rule, None);
        assert_eq!(refusal.denied_by(), "issuance");
        assert!(refusal.reason.contains("stranger"));
        assert!(
            IssuancePolicy::default()
                .check(&hash("stranger"), &csr("Jane Doe", &["DNS:x.y"], Key::P256))
                .is_ok(),
            "no rules: the policy does not restrict"
        );
    }
}
