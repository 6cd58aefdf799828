//! The catalogue of simulated domains: the seed's three companies and the classic failures.
//! The same catalogue drives the integration tests and the `demo` command.

use super::mail::MailBehaviour;
use super::pki::{TestCa, Validity};
use super::site::Behaviour;
use super::world::{WorldBuilder, WorldError};
use crate::model::step::{Outcome, StepId};
use crate::net::mail::MailProtocol;
use crate::protocol::pox;

/// One simulated mail domain and what a probe must conclude about it.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The mail domain.
    pub domain: &'static str,
    /// What it shows.
    pub description: &'static str,
    /// The customer label the demo gives it.
    pub customer: &'static str,
    /// The expected verdict.
    pub outcome: Outcome,
    /// The expected endpoint step.
    pub endpoint: Option<StepId>,
    /// Shown by `demo`.
    pub in_demo: bool,
    /// The account the probe uses for this domain (the expected verdict is with it).
    pub credentials: Option<LabAccount>,
}

/// A probe account of the simulated world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabAccount {
    /// The username.
    pub username: &'static str,
    /// The password.
    pub password: &'static str,
}

impl LabAccount {
    /// Writes the account as a credentials file (mode 0600) named after `domain` in `dir`.
    pub fn write_file(
        &self,
        dir: &std::path::Path,
        domain: &str,
    ) -> std::io::Result<std::path::PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{domain}.credentials.yml"));
        // Written aside and renamed into place: concurrent probes never read half a file.
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = dir.join(format!(".{domain}.{}.{n}.partial", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)?;
        writeln!(
            file,
            "username: \"{}\"\npassword: \"{}\"",
            self.username, self.password
        )?;
        drop(file);
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }
}

/// The account of `ewsauth.example`'s Exchange (answers settings only to it).
pub const EWSAUTH_ACCOUNT: LabAccount = LabAccount {
    username: "probe@ewsauth.example",
    password: "lab-only-password",
};

/// The shared Exchange host of CompanyA (the seed's SBS server).
pub const EXCHANGE_HOST: &str = "webmail.companya.example";

/// Every scenario, in the order the demo lists them.
pub fn catalogue() -> Vec<Scenario> {
    use Outcome::*;
    let s = |domain, description, customer, outcome, endpoint, in_demo| Scenario {
        domain,
        description,
        customer,
        outcome,
        endpoint,
        in_demo,
        credentials: None,
    };
    vec![
        s(
            "companya.example",
            "healthy: autodiscover host on the Exchange certificate",
            "CompanyA",
            Ok,
            Some(StepId::AutodiscoverDomain),
            true,
        ),
        s(
            "companyb.example",
            "the seed: bare domain serves a web site certificate, SRV to the Exchange host",
            "CompanyB",
            CertificatePrompt,
            Some(StepId::SrvRecord),
            true,
        ),
        s(
            "companyc.example",
            "the fix: no bare-domain web site, SRV to the Exchange host",
            "CompanyC",
            RedirectPrompt,
            Some(StepId::SrvRecord),
            true,
        ),
        s(
            "expired.example",
            "autodiscover host with an expired certificate",
            "Expired Ltd",
            CertificatePrompt,
            None,
            true,
        ),
        s(
            "selfsigned.example",
            "autodiscover host with a self-signed certificate",
            "Selfsigned Ltd",
            CertificatePrompt,
            None,
            true,
        ),
        s(
            "redirect.example",
            "port 80 redirects to the Exchange host",
            "Redirect Ltd",
            RedirectPrompt,
            Some(StepId::HttpRedirect),
            true,
        ),
        s(
            "nothing.example",
            "no records at all",
            "Nothing Ltd",
            NotFound,
            None,
            true,
        ),
        s(
            "expiring.example",
            "certificate expires in 9 days",
            "Expiring Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            true,
        ),
        s(
            "cname.example",
            "autodiscover CNAME to a hoster whose certificate lacks the name",
            "Cname Ltd",
            CertificatePrompt,
            None,
            false,
        ),
        s(
            "insecure.example",
            "port 80 redirects to plain http",
            "Insecure Ltd",
            NotFound,
            None,
            false,
        ),
        s(
            "loop.example",
            "two hosts redirecting to each other",
            "Loop Ltd",
            NotFound,
            None,
            false,
        ),
        s(
            "srvdot.example",
            "SRV record with target \".\"",
            "Srvdot Ltd",
            NotFound,
            None,
            false,
        ),
        s(
            "srvport.example",
            "SRV record on port 8443",
            "Srvport Ltd",
            NotFound,
            None,
            false,
        ),
        s(
            "wildcard.example",
            "wildcard certificate on the autodiscover host",
            "Wildcard Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            false,
        ),
        s(
            "parking.example",
            "parking page answering 200 everywhere",
            "Parking Ltd",
            NotFound,
            None,
            false,
        ),
        s(
            "hybrid.example",
            "redirectAddr to a tenant address",
            "Hybrid Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            false,
        ),
        s(
            "slowtls.example",
            "bare domain accepts TCP and never speaks TLS",
            "Slowtls Ltd",
            RedirectPrompt,
            Some(StepId::SrvRecord),
            false,
        ),
        s(
            "split.example",
            "two A records serving different certificates",
            "Split Ltd",
            CertificatePrompt,
            None,
            false,
        ),
        s(
            "huge.example",
            "bare domain answers with a 50 MiB body",
            "Huge Ltd",
            NotFound,
            None,
            false,
        ),
        s(
            "basic.example",
            "web server asking for a Basic password on the Autodiscover path",
            "Basic Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            false,
        ),
        s(
            "redirecturl.example",
            "redirectUrl answer to the Exchange host",
            "Redirecturl Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            false,
        ),
        s(
            "cloud.example",
            "Microsoft 365 tenant; the bare domain's web site certificate lacks the name",
            "Cloud Ltd",
            Ok,
            Some(StepId::Microsoft365),
            true,
        ),
        s(
            "hybridm365.example",
            "hybrid: Microsoft 365 names the on-premises Exchange",
            "Hybrid365 Ltd",
            Ok,
            Some(StepId::Microsoft365),
            true,
        ),
        s(
            "leafonly.example",
            "server sends only its leaf; the issuer is at the AIA URL",
            "Leafonly Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            true,
        ),
        s(
            "leafnoaia.example",
            "server sends only its leaf and names no AIA URL",
            "Leafnoaia Ltd",
            CertificatePrompt,
            None,
            false,
        ),
        s(
            "xn--mnchen-3ya.example",
            "international domain (münchen.example), probed as its A-label",
            "München GmbH",
            Ok,
            Some(StepId::AutodiscoverDomain),
            false,
        ),
        s(
            "blackhole.example",
            "bare domain drops packets, SRV to the Exchange host",
            "Blackhole Ltd",
            RedirectPrompt,
            Some(StepId::SrvRecord),
            false,
        ),
        s(
            "ewscert.example",
            "Exchange answers settings; the EWS host it names is not on its certificate",
            "Ewscert Ltd",
            CertificatePrompt,
            Some(StepId::AutodiscoverDomain),
            true,
        ),
        Scenario {
            credentials: Some(EWSAUTH_ACCOUNT),
            ..s(
                "ewsauth.example",
                "Exchange answers settings to the probe's credentials; its EWS host is not on its certificate",
                "Ewsauth Ltd",
                CertificatePrompt,
                Some(StepId::AutodiscoverDomain),
                true,
            )
        },
        s(
            "mailhoster.example",
            "IMAP/SMTP hoster: STARTTLS everywhere, SMTP 587 presents another name's certificate",
            "Mailhoster Ltd",
            CertificatePrompt,
            Some(StepId::AutodiscoverDomain),
            true,
        ),
        s(
            "internalname.example",
            "settings name EWS at an internal .local host",
            "Internalname Ltd",
            Ok,
            Some(StepId::AutodiscoverDomain),
            false,
        ),
    ]
}

/// The settings of an Exchange server: EWS (and the availability service) on `ews_host`,
/// Outlook Anywhere and the offline address book on `autodiscover_host`.
fn exchange_settings(ews_host: &str, autodiscover_host: &str) -> String {
    pox::settings_document(
        "Probe",
        &format!(
            "<Protocol><Type>EXPR</Type><Server>{autodiscover_host}</Server><SSL>On</SSL>\
             <AuthPackage>Negotiate</AuthPackage>\
             <ASUrl>https://{ews_host}/EWS/Exchange.asmx</ASUrl>\
             <EwsUrl>https://{ews_host}/EWS/Exchange.asmx</EwsUrl>\
             <OABUrl>https://{autodiscover_host}/OAB/9d6b/</OABUrl></Protocol>"
        ),
    )
    .replace(
        "<User><DisplayName>",
        "<User><AutoDiscoverSMTPAddress>@ADDRESS@</AutoDiscoverSMTPAddress><DisplayName>",
    )
}

/// The domain whose DNS provider changes in the seed's story.
pub const PROVIDER_CHANGE_DOMAIN: &str = "companyc.example";

fn companyc_zone_before() -> String {
    format!(
        "@ IN SOA ns1.old-dns.example. hostmaster.old-dns.example. 2024010101 3600 600 86400 60\n\
         @ NS ns1.old-dns.example.\n@ NS ns2.old-dns.example.\n\
         www A 198.51.100.30\n_autodiscover._tcp SRV 0 0 443 {EXCHANGE_HOST}."
    )
}

/// The seed's story: the CEO moves companyc.example to a new DNS provider. The new zone has new
/// name servers and serial, the provider's default web host on the bare domain (its certificate
/// names only www), and no SRV record: a redirect prompt becomes a certificate prompt.
/// Returns the zone and its records, for [`super::world::World::replace_zone`].
pub fn provider_change() -> (&'static str, String) {
    (
        PROVIDER_CHANGE_DOMAIN,
        "@ IN SOA ns1.new-dns.example. support.new-dns.example. 2026113001 3600 600 86400 60\n\
         @ NS ns1.new-dns.example.\n@ NS ns2.new-dns.example.\n\
         @ A 198.51.100.31\nwww A 198.51.100.31"
            .to_owned(),
    )
}

/// Builds the world serving every scenario of the catalogue.
pub fn world() -> Result<WorldBuilder, WorldError> {
    let mut w = WorldBuilder::new()?;
    let issue = |ca: &TestCa, names: &[&str]| ca.issue(names, Validity::ValidFor { days: 365 });

    // CompanyA's Exchange server: its certificate also carries an internal name, like the seed's.
    let exchange = issue(
        w.ca(),
        &[
            EXCHANGE_HOST,
            "autodiscover.companya.example",
            "corp-sbs.local",
        ],
    )?;
    w.https("203.0.113.10", exchange, Behaviour::Exchange);
    let companya_site = issue(w.ca(), &["companya.example", "www.companya.example"])?;
    w.https("203.0.113.11", companya_site, Behaviour::WebSite);
    w.zone(
        "companya.example",
        "@ A 203.0.113.11\nwww A 203.0.113.11\nwebmail A 203.0.113.10\nautodiscover A 203.0.113.10",
    );

    // The seed: the new DNS provider points the bare domain at a web host whose certificate
    // covers only www; the SRV record to the Exchange host is back.
    let companyb_site = issue(w.ca(), &["www.companyb.example"])?;
    w.https("198.51.100.20", companyb_site, Behaviour::WebSite);
    w.zone("companyb.example", &format!("@ A 198.51.100.20\nwww A 198.51.100.20\n_autodiscover._tcp SRV 0 0 443 {EXCHANGE_HOST}."));

    // The fix: the bare domain has no address; SRV leads to the Exchange host. Its zone is at
    // the old DNS provider until `provider_change` moves it (the demo and the history tests).
    w.zone("companyc.example", &companyc_zone_before());
    // The new provider's web host, where its default zone points the bare domain.
    let provider_site = issue(w.ca(), &["www.companyc.example"])?;
    w.https("198.51.100.31", provider_site, Behaviour::WebSite);

    let expired = w.ca().issue(
        &["autodiscover.expired.example"],
        Validity::Expired { days_ago: 12 },
    )?;
    w.https("203.0.113.30", expired, Behaviour::Exchange);
    w.zone("expired.example", "autodiscover A 203.0.113.30");

    let selfsigned = TestCa::self_signed(&["autodiscover.selfsigned.example"])?;
    w.https("203.0.113.31", selfsigned, Behaviour::Exchange);
    w.zone("selfsigned.example", "autodiscover A 203.0.113.31");

    w.http(
        "203.0.113.32",
        Behaviour::Redirect {
            status: 302,
            location: format!("https://{EXCHANGE_HOST}/Autodiscover/Autodiscover.xml"),
        },
    );
    w.zone("redirect.example", "autodiscover A 203.0.113.32");

    w.zone("nothing.example", "www A 198.51.100.40");

    let expiring = w.ca().issue(
        &["autodiscover.expiring.example"],
        Validity::ValidFor { days: 9 },
    )?;
    w.https("203.0.113.51", expiring, Behaviour::Exchange);
    w.zone("expiring.example", "autodiscover A 203.0.113.51");

    let hoster = issue(w.ca(), &["mail.hoster.example"])?;
    w.https("203.0.113.40", hoster, Behaviour::Exchange);
    w.zone("hoster.example", "mail A 203.0.113.40");
    w.zone("cname.example", "autodiscover CNAME mail.hoster.example.");

    w.http(
        "203.0.113.33",
        Behaviour::Redirect {
            status: 302,
            location: format!("http://{EXCHANGE_HOST}/Autodiscover/Autodiscover.xml"),
        },
    );
    w.zone("insecure.example", "autodiscover A 203.0.113.33");

    let loop_a = issue(w.ca(), &["autodiscover.loop.example"])?;
    let loop_b = issue(w.ca(), &["autodiscover2.loop.example"])?;
    w.https(
        "203.0.113.41",
        loop_a,
        Behaviour::Redirect {
            status: 302,
            location: "https://autodiscover2.loop.example/autodiscover/autodiscover.xml".into(),
        },
    );
    w.https(
        "203.0.113.42",
        loop_b,
        Behaviour::Redirect {
            status: 301,
            location: "https://autodiscover.loop.example/Autodiscover/Autodiscover.xml".into(),
        },
    );
    w.zone(
        "loop.example",
        "autodiscover A 203.0.113.41\nautodiscover2 A 203.0.113.42",
    );

    w.zone("srvdot.example", "_autodiscover._tcp SRV 0 0 0 .");
    w.zone(
        "srvport.example",
        &format!("_autodiscover._tcp SRV 0 0 8443 {EXCHANGE_HOST}."),
    );

    let wildcard = issue(w.ca(), &["*.wildcard.example"])?;
    w.https("203.0.113.43", wildcard, Behaviour::Exchange);
    w.zone("wildcard.example", "autodiscover A 203.0.113.43");

    let parking = issue(w.ca(), &["parking.example", "autodiscover.parking.example"])?;
    w.https("203.0.113.44", parking, Behaviour::Parking);
    w.zone(
        "parking.example",
        "@ A 203.0.113.44\nautodiscover A 203.0.113.44",
    );

    let hybrid = issue(w.ca(), &["autodiscover.hybrid.example"])?;
    w.https(
        "203.0.113.45",
        hybrid,
        Behaviour::RedirectAddr {
            address: "someone@tenant.example".into(),
        },
    );
    w.zone("hybrid.example", "autodiscover A 203.0.113.45");
    let tenant = issue(w.ca(), &["autodiscover.tenant.example"])?;
    w.https("203.0.113.46", tenant, Behaviour::Exchange);
    w.zone("tenant.example", "autodiscover A 203.0.113.46");

    let slow = issue(w.ca(), &["slowtls.example"])?;
    w.https("203.0.113.47", slow, Behaviour::Silent);
    w.zone(
        "slowtls.example",
        &format!("@ A 203.0.113.47\n_autodiscover._tcp SRV 0 0 443 {EXCHANGE_HOST}."),
    );

    let split_good = issue(w.ca(), &["autodiscover.split.example"])?;
    let split_old = issue(w.ca(), &["old.split.example"])?;
    w.https("203.0.113.48", split_good, Behaviour::Exchange);
    w.https("203.0.113.49", split_old, Behaviour::Exchange);
    w.zone(
        "split.example",
        "autodiscover A 203.0.113.48\nautodiscover A 203.0.113.49",
    );

    let huge = issue(w.ca(), &["huge.example"])?;
    w.https(
        "203.0.113.50",
        huge,
        Behaviour::HugeBody {
            bytes: 50 * 1024 * 1024,
        },
    );
    w.zone("huge.example", "@ A 203.0.113.50");

    let basic = issue(w.ca(), &["autodiscover.basic.example"])?;
    w.https("203.0.113.52", basic, Behaviour::BasicAuth);
    w.zone("basic.example", "autodiscover A 203.0.113.52");

    let redirect_url = issue(w.ca(), &["autodiscover.redirecturl.example"])?;
    w.https(
        "203.0.113.53",
        redirect_url,
        Behaviour::RedirectUrl {
            url: format!("https://{EXCHANGE_HOST}/autodiscover/autodiscover.xml"),
        },
    );
    w.zone("redirecturl.example", "autodiscover A 203.0.113.53");

    w.blackhole("203.0.113.54", 443);
    w.zone(
        "blackhole.example",
        &format!("@ A 203.0.113.54\n_autodiscover._tcp SRV 0 0 443 {EXCHANGE_HOST}."),
    );
    let drip = issue(w.ca(), &["slowdrip.example"])?;
    w.https("203.0.113.55", drip, Behaviour::SlowDrip);
    w.zone("slowdrip.example", "@ A 203.0.113.55");

    // Microsoft 365: knows the cloud tenant and the hybrid organisation, 302 for the rest.
    let microsoft = issue(
        w.ca(),
        &[
            "outlook.office365.com",
            "autodiscover.outlook.com",
            "*.outlook.com",
        ],
    )?;
    w.https(
        "203.0.113.60",
        microsoft,
        Behaviour::Microsoft365 {
            known: vec![
                (
                    "someone@cloud.example".into(),
                    "https://outlook.office365.com/autodiscover/autodiscover.xml".into(),
                ),
                (
                    "someone@hybridm365.example".into(),
                    "https://mail.hybridm365.example/autodiscover/autodiscover.xml".into(),
                ),
            ],
        },
    );
    w.zone("office365.com", "outlook A 203.0.113.60");
    w.zone("outlook.com", "autodiscover A 203.0.113.60");
    let cloud_site = issue(w.ca(), &["www.cloud.example"])?;
    w.https("198.51.100.60", cloud_site, Behaviour::WebSite);
    w.zone(
        "cloud.example",
        "@ A 198.51.100.60\nwww A 198.51.100.60\nautodiscover CNAME autodiscover.outlook.com.",
    );
    let hybrid_exchange = issue(w.ca(), &["mail.hybridm365.example"])?;
    w.https("203.0.113.61", hybrid_exchange, Behaviour::Exchange);
    w.zone("hybridm365.example", "mail A 203.0.113.61");

    // Incomplete chains: the leaf alone, issued by an intermediate the client must fetch.
    let intermediate = w
        .ca()
        .intermediate("Lab Issuing CA 1", Validity::ValidFor { days: 1000 })?;
    let leaf_only = intermediate.issue_leaf_only(
        &["autodiscover.leafonly.example"],
        Some("http://aia.lab.example/issuing1.der"),
    )?;
    w.https("203.0.113.62", leaf_only, Behaviour::Exchange);
    w.zone("leafonly.example", "autodiscover A 203.0.113.62");
    w.http(
        "203.0.113.63",
        Behaviour::File {
            body: intermediate.der().to_vec(),
        },
    );
    w.zone("lab.example", "aia A 203.0.113.63\nmail A 203.0.113.10");
    let no_aia = intermediate.issue_leaf_only(&["autodiscover.leafnoaia.example"], None)?;
    w.https("203.0.113.64", no_aia, Behaviour::Exchange);
    w.zone("leafnoaia.example", "autodiscover A 203.0.113.64");

    // An international domain, published (and certified) under its A-label.
    let munich = issue(w.ca(), &["autodiscover.xn--mnchen-3ya.example"])?;
    w.https("203.0.113.65", munich, Behaviour::Exchange);
    w.zone("xn--mnchen-3ya.example", "autodiscover A 203.0.113.65");

    // After Autodiscover. One Exchange server answers for both names; its certificate lists
    // only the autodiscover host, so EWS at mail.D prompts.
    let ewscert = issue(w.ca(), &["autodiscover.ewscert.example"])?;
    w.https(
        "203.0.113.70",
        ewscert,
        Behaviour::Settings {
            xml: exchange_settings("mail.ewscert.example", "autodiscover.ewscert.example"),
        },
    );
    w.zone(
        "ewscert.example",
        "autodiscover A 203.0.113.70\nmail A 203.0.113.70",
    );
    let ewsauth = issue(w.ca(), &["autodiscover.ewsauth.example"])?;
    w.https(
        "203.0.113.71",
        ewsauth,
        Behaviour::SettingsWithCredentials {
            username: EWSAUTH_ACCOUNT.username.into(),
            password: EWSAUTH_ACCOUNT.password.into(),
            xml: exchange_settings("mail.ewsauth.example", "autodiscover.ewsauth.example"),
        },
    );
    w.zone(
        "ewsauth.example",
        "autodiscover A 203.0.113.71\nmail A 203.0.113.71",
    );

    // A mail hoster answering Autodiscover without authentication: IMAP and SMTP with
    // STARTTLS, POP3 with implicit TLS; the SMTP server presents another host's certificate.
    let hoster_autodiscover = issue(w.ca(), &["autodiscover.mailhoster.example"])?;
    w.https(
        "203.0.113.72",
        hoster_autodiscover,
        Behaviour::Settings {
            xml: pox::settings_document(
                "Probe",
                "<Protocol><Type>IMAP</Type><Server>mail.mailhoster.example</Server><Port>143</Port>\
                 <SPA>off</SPA><Encryption>TLS</Encryption><AuthRequired>on</AuthRequired></Protocol>\
                 <Protocol><Type>POP3</Type><Server>mail.mailhoster.example</Server><Port>995</Port>\
                 <SPA>off</SPA><SSL>on</SSL><AuthRequired>on</AuthRequired></Protocol>\
                 <Protocol><Type>SMTP</Type><Server>smtp.mailhoster.example</Server><Port>587</Port>\
                 <SPA>off</SPA><Encryption>TLS</Encryption><AuthRequired>on</AuthRequired>\
                 <UsePOPAuth>on</UsePOPAuth></Protocol>",
            ),
        },
    );
    let hoster_mail = issue(w.ca(), &["mail.mailhoster.example"])?;
    w.mail(
        "203.0.113.73",
        143,
        hoster_mail.clone(),
        MailBehaviour {
            protocol: MailProtocol::Imap,
            implicit_tls: false,
            starttls: true,
            fault: None,
        },
    );
    w.mail(
        "203.0.113.73",
        995,
        hoster_mail,
        MailBehaviour {
            protocol: MailProtocol::Pop3,
            implicit_tls: true,
            starttls: false,
            fault: None,
        },
    );
    let other_name = issue(w.ca(), &["mx.otherhoster.example"])?;
    w.mail(
        "203.0.113.74",
        587,
        other_name,
        MailBehaviour {
            protocol: MailProtocol::Smtp,
            implicit_tls: false,
            starttls: true,
            fault: None,
        },
    );
    w.zone(
        "mailhoster.example",
        "autodiscover A 203.0.113.72\nmail A 203.0.113.73\nsmtp A 203.0.113.74",
    );

    // Settings that send external clients to an internal name.
    let internal = issue(w.ca(), &["autodiscover.internalname.example"])?;
    w.https(
        "203.0.113.75",
        internal,
        Behaviour::Settings {
            xml: pox::settings_document(
                "Probe",
                "<Protocol><Type>EXPR</Type><Server>autodiscover.internalname.example</Server>\
                 <EwsUrl>https://exch01.corp.local/EWS/Exchange.asmx</EwsUrl></Protocol>",
            ),
        },
    );
    w.zone("internalname.example", "autodiscover A 203.0.113.75");

    let broken = issue(w.ca(), &["autodiscover.brokenxml.example"])?;
    w.https("203.0.113.56", broken, Behaviour::BrokenXml);
    w.zone("brokenxml.example", "autodiscover A 203.0.113.56");
    Ok(w)
}
