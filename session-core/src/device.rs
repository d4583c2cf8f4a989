//! What a session knows of the device its login came from: the `User-Agent` (and the browser
//! and operating system read from it), the client's network, how the user proved who they
//! are, whether the login asked to be remembered, and whether the device was new to the user.
//! Stored in each session's record ([`crate::record`]), shown in
//! [`SessionInfo`](crate::SessionInfo).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::binding::DeviceBinding;
use crate::error::{Error, Result};

/// Longest session label (the login's `User-Agent`), in characters; longer ones are cut.
pub const MAX_LABEL_CHARS: usize = 256;

/// Longest authentication method name ([`NewSession::with_method`](crate::NewSession::with_method)),
/// in bytes.
pub const MAX_METHOD_LEN: usize = 32;

/// Bytes of an IPv4 network (a /24) in the device block.
pub(crate) const NETWORK_V4_BYTES: usize = 3;
/// Bytes of an IPv6 network (a /48) in the device block.
pub(crate) const NETWORK_V6_BYTES: usize = 6;
/// Where the network tag is in the device block (after the flags byte), 0-based.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // read only by the Redis scripts
pub(crate) const NETWORK_TAG_OFFSET: usize = 1;

const REMEMBERED: u8 = 1;
const NEW_DEVICE: u8 = 2;
/// An impersonation session: the impersonator's user id (length-prefixed) follows the method.
const IMPERSONATED: u8 = 4;
/// A device-bound session (DBSC): the binding block ([`DeviceBinding`]) follows the impersonator.
const BOUND: u8 = 8;

/// The device part of a session record. The default (nothing known) encodes as no bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Device {
    /// The login's `User-Agent`, cut to [`MAX_LABEL_CHARS`]; empty: none.
    pub(crate) label: String,
    pub(crate) network: Option<Network>,
    /// How the user authenticated (`password`, `passkey`, ...); empty: not said.
    pub(crate) method: String,
    pub(crate) remembered: bool,
    pub(crate) new_device: bool,
    /// For an impersonation session: the user id of the admin impersonating; empty otherwise.
    pub(crate) impersonator: String,
    /// The session's device binding (DBSC), once the browser registered a key.
    pub(crate) binding: Option<DeviceBinding>,
}

/// Checks an authentication method's name (empty: not said) before a store keeps it.
pub(crate) fn check_method(method: &str) -> Result<()> {
    let ok = method.len() <= MAX_METHOD_LEN
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "authentication method {method:?} must be at most {MAX_METHOD_LEN} bytes of \
             [A-Za-z0-9._-] (a name such as \"password\" or \"passkey\")"
        )))
    }
}

/// Checks the method of a re-authentication: as [`check_method`], and said (not empty).
pub(crate) fn check_proof_method(method: &str) -> Result<()> {
    if method.is_empty() {
        return Err(Error::InvalidInput(
            "a re-authentication names its method (such as \"password\" or \"passkey\")".into(),
        ));
    }
    check_method(method)
}

impl Device {
    /// Checks what the application gave before a store keeps it.
    pub(crate) fn check(&self) -> Result<()> {
        check_method(&self.method)
    }

    /// The encoded block (without its length): empty for the default, else
    /// `flags, network tag (0, 4 or 6), network bytes (0, 3 or 6), method length, method,
    /// [impersonator length, impersonator,] [binding,] label`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        if *self == Self::default() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(9 + self.method.len() + self.label.len());
        let mut flags = 0;
        if self.remembered {
            flags |= REMEMBERED;
        }
        if self.new_device {
            flags |= NEW_DEVICE;
        }
        if !self.impersonator.is_empty() {
            flags |= IMPERSONATED;
        }
        if self.binding.is_some() {
            flags |= BOUND;
        }
        out.push(flags);
        match self.network {
            None => out.push(0),
            Some(Network::V4(b)) => {
                out.push(4);
                out.extend_from_slice(&b);
            }
            Some(Network::V6(b)) => {
                out.push(6);
                out.extend_from_slice(&b);
            }
        }
        // At most MAX_METHOD_LEN (checked before any store keeps it).
        out.push(self.method.len().min(usize::from(u8::MAX)) as u8);
        out.extend_from_slice(self.method.as_bytes());
        if !self.impersonator.is_empty() {
            // A user id: at most MAX_USER_ID_LEN (255) bytes, checked before any store keeps it.
            out.push(self.impersonator.len().min(usize::from(u8::MAX)) as u8);
            out.extend_from_slice(self.impersonator.as_bytes());
        }
        if let Some(binding) = &self.binding {
            binding.encode(&mut out);
        }
        out.extend_from_slice(self.label.as_bytes());
        out
    }

    /// Reads a block [`Device::encode`] wrote; `None` for anything else (a second spelling of
    /// the default included, so one device has one byte form).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let Some((&flags, rest)) = bytes.split_first() else {
            return Some(Self::default());
        };
        if flags & !(REMEMBERED | NEW_DEVICE | IMPERSONATED | BOUND) != 0 {
            return None;
        }
        let (&tag, rest) = rest.split_first()?;
        let (network, rest) = match tag {
            0 => (None, rest),
            4 => {
                let (b, rest) = rest.split_first_chunk::<NETWORK_V4_BYTES>()?;
                (Some(Network::V4(*b)), rest)
            }
            6 => {
                let (b, rest) = rest.split_first_chunk::<NETWORK_V6_BYTES>()?;
                (Some(Network::V6(*b)), rest)
            }
            _ => return None,
        };
        let (&method_len, rest) = rest.split_first()?;
        let (method, rest) = rest.split_at_checked(usize::from(method_len))?;
        let (impersonator, label) = if flags & IMPERSONATED != 0 {
            let (&len, rest) = rest.split_first()?;
            let (who, label) = rest.split_at_checked(usize::from(len))?;
            (
                std::str::from_utf8(who).ok().filter(|w| !w.is_empty())?,
                label,
            )
        } else {
            ("", rest)
        };
        let (binding, label) = if flags & BOUND != 0 {
            let (binding, label) = DeviceBinding::decode(label)?;
            (Some(binding), label)
        } else {
            (None, label)
        };
        let device = Self {
            binding,
            impersonator: impersonator.to_owned(),
            label: std::str::from_utf8(label).ok()?.to_owned(),
            network,
            method: std::str::from_utf8(method).ok()?.to_owned(),
            remembered: flags & REMEMBERED != 0,
            new_device: flags & NEW_DEVICE != 0,
        };
        let canonical = device != Self::default()
            && device.check().is_ok()
            && device.label.chars().nth(MAX_LABEL_CHARS).is_none();
        canonical.then_some(device)
    }

    /// The browser and operating system named by the label, if it is a `User-Agent` a parser
    /// recognises.
    pub(crate) fn browser_and_os(&self) -> (Option<String>, Option<String>) {
        browser_and_os(&self.label)
    }
}

/// `label` cut to [`MAX_LABEL_CHARS`] characters.
pub(crate) fn bounded_label(mut label: String) -> String {
    if let Some((cut, _)) = label.char_indices().nth(MAX_LABEL_CHARS) {
        label.truncate(cut);
    }
    label
}

/// The browser family and operating system a `User-Agent` names (by the woothee project's
/// dataset), each `None` when it names none that the dataset knows. Apple's phones and tablets
/// are reported as `iOS`, as users know them.
pub(crate) fn browser_and_os(user_agent: &str) -> (Option<String>, Option<String>) {
    if user_agent.is_empty() {
        return (None, None);
    }
    let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
        return (None, None);
    };
    let known =
        |s: &str| (!s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN).then(|| s.to_owned());
    let os = match parsed.os {
        "iPhone" | "iPad" | "iPod" => Some("iOS".to_owned()),
        other => known(other),
    };
    (known(parsed.name), os)
}

/// The network a client address belongs to, as far as a session keeps it: an IPv4 address's
/// /24, an IPv6 address's /48 (an IPv4-mapped IPv6 address counts as IPv4). Never the whole
/// address: enough to tell "home" from "office" in a device list, not to locate a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Network {
    /// The first three bytes of an IPv4 address.
    V4([u8; NETWORK_V4_BYTES]),
    /// The first six bytes of an IPv6 address.
    V6([u8; NETWORK_V6_BYTES]),
}

impl Network {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::v4(v4),
                None => {
                    let mut b = [0u8; 6];
                    b.copy_from_slice(&v6.octets()[..6]);
                    Self::V6(b)
                }
            },
        }
    }

    fn v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        Self::V4([a, b, c])
    }
}

/// CIDR notation: `203.0.113.0/24`, `2001:db8:1::/48`.
impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4([a, b, c]) => write!(f, "{}/24", Ipv4Addr::new(a, b, c, 0)),
            Self::V6(b) => {
                let mut octets = [0u8; 16];
                octets[..6].copy_from_slice(&b);
                write!(f, "{}/48", Ipv6Addr::from(octets))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
         (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) \
         AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1";
    const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) \
         AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15";

    #[test]
    fn browsers_and_systems_are_read_from_common_user_agents() {
        let cases = [
            (FIREFOX_LINUX, "Firefox", "Linux"),
            (CHROME_WINDOWS, "Chrome", "Windows"),
            (SAFARI_IPHONE, "Safari", "iOS"),
            (SAFARI_MAC, "Safari", "Mac"),
        ];
        for (ua, browser, os) in cases {
            let (b, o) = browser_and_os(ua);
            assert!(
                b.as_deref().is_some_and(|b| b.contains(browser)),
                "{ua}: {b:?}"
            );
            assert!(o.as_deref().is_some_and(|o| o.contains(os)), "{ua}: {o:?}");
        }
        assert_eq!(browser_and_os(""), (None, None));
        assert_eq!(browser_and_os("curl/8.5.0").1, None);
    }

    #[test]
    fn a_network_keeps_the_24_or_48_bit_prefix_only() {
        let net = |s: &str| Network::of(s.parse().unwrap()).to_string();
        assert_eq!(net("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net("127.0.0.1"), "127.0.0.0/24");
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
        assert_eq!(net("::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(net("::1"), "::/48");
    }

    #[test]
    fn a_device_reads_back_as_written_and_has_one_byte_form() {
        assert!(Device::default().encode().is_empty());
        assert_eq!(Device::decode(&[]), Some(Device::default()));
        let device = Device {
            label: FIREFOX_LINUX.to_owned(),
            network: Some(Network::of("2001:db8::1".parse().unwrap())),
            method: "passkey".to_owned(),
            remembered: true,
            new_device: true,
            impersonator: String::new(),
            binding: None,
        };
        assert_eq!(Device::decode(&device.encode()), Some(device.clone()));
        let impersonated = Device {
            impersonator: "admin".to_owned(),
            ..device
        };
        assert_eq!(Device::decode(&impersonated.encode()), Some(impersonated));
        let alone = Device {
            impersonator: "root".to_owned(),
            ..Device::default()
        };
        assert_eq!(Device::decode(&alone.encode()), Some(alone));
        // The flag without a name, or a name cut short: refused.
        assert_eq!(Device::decode(&[4, 0, 0, 0]), None);
        assert_eq!(Device::decode(&[4, 0, 0, 5, b'a']), None);
        // The default spelled out, unknown flags, an unknown tag, a cut block: refused.
        for bad in [
            &[0u8, 0, 0][..],
            &[4, 0, 0],
            &[0, 5, 0],
            &[0, 4, 1, 2],
            &[0, 0, 3, b'a'],
        ] {
            assert_eq!(Device::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_method_is_a_short_name() {
        let with = |m: &str| Device {
            method: m.to_owned(),
            ..Device::default()
        };
        assert!(with("password").check().is_ok());
        assert!(with("webauthn.passkey-v2").check().is_ok());
        assert!(with("pass word").check().is_err());
        assert!(with(&"m".repeat(MAX_METHOD_LEN + 1)).check().is_err());
    }
}
