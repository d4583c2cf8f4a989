//! [`log_safe`]: client text made fit for a log line.
//!
//! Usernames, path segments and headers come from whoever sends the request. Written to a log
//! as they are, a `\n` starts a line the attacker wrote (`x\n2026-01-01 INFO login user=admin`),
//! terminal escapes recolour or hide lines for whoever reads the log in a terminal, and 16 KB of
//! text buries everything around it. [`log_safe`] wraps such text so that its `Display` is one
//! bounded, unambiguous piece of a line.

use std::fmt::{self, Write as _};

/// How many characters of client text a log field shows; the rest is replaced by a marker.
pub const LOG_SAFE_MAX_CHARS: usize = 128;

/// Wraps client-controlled `text` for logging: its `Display` escapes control characters and
/// cuts it to [`LOG_SAFE_MAX_CHARS`] characters plus a marker saying how long it was.
///
/// - `\n`, `\r` and `\t` become `\n`, `\r`, `\t`; a backslash becomes `\\` (so an escape in the
///   output always came from this function, never from the client);
/// - every other control character (C0, DEL, C1, so also the ANSI escape `ESC`), the line and
///   paragraph separators U+2028/U+2029 and the bidirectional overrides (U+202A–U+202E,
///   U+2066–U+2069, which reorder how a line is shown) becomes `\u{..}`;
/// - text longer than [`LOG_SAFE_MAX_CHARS`] characters shows its first 128 and then
///   `…[N bytes]`, N being the whole length in bytes.
///
/// Formatting allocates nothing. Use it for every log field that holds client text:
///
/// ```
/// use session_core::log_safe;
///
/// let username = "x\nFAKE LINE \u{1b}[31m";
/// assert_eq!(log_safe(username).to_string(), r"x\nFAKE LINE \u{1b}[31m");
/// tracing::info!(user = %log_safe(username), "failed login");
///
/// let long = "a".repeat(20_000);
/// let shown = log_safe(&long).to_string();
/// assert!(shown.starts_with(&"a".repeat(128)));
/// assert!(shown.ends_with("…[20000 bytes]"));
/// assert_eq!(log_safe("alice").to_string(), "alice");
/// ```
pub fn log_safe(text: &str) -> LogSafe<'_> {
    LogSafe(text)
}

/// Client text that displays escaped and bounded; made by [`log_safe`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LogSafe<'a>(&'a str);

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == LOG_SAFE_MAX_CHARS {
                return write!(f, "…[{} bytes]", self.0.len());
            }
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                c if needs_escape(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for LogSafe<'_> {
    /// The same as `Display`, in quotes (so `?field` shows the escaped text too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(s: &str) -> String {
        log_safe(s).to_string()
    }

    #[test]
    fn control_characters_never_reach_the_output() {
        for (input, expected) in [
            ("a\nb", r"a\nb"),
            ("a\r\nb", r"a\r\nb"),
            ("\t", r"\t"),
            ("\u{1b}[2J", r"\u{1b}[2J"),
            (
                "\u{0}\u{7}\u{7f}\u{85}\u{9b}",
                r"\u{0}\u{7}\u{7f}\u{85}\u{9b}",
            ),
            ("x\u{2028}y\u{2029}", r"x\u{2028}y\u{2029}"),
            ("\u{202e}evil\u{2066}", r"\u{202e}evil\u{2066}"),
            (r"a\nb", r"a\\nb"),
            ("é ü 日本 🙂", "é ü 日本 🙂"),
            ("", ""),
        ] {
            assert_eq!(shown(input), expected, "{input:?}");
        }
        let all: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        let out = shown(&all);
        assert!(!out.chars().any(needs_escape), "{out:?}");
    }

    #[test]
    fn long_text_is_cut_with_a_marker_and_short_text_is_not() {
        let exact = "é".repeat(LOG_SAFE_MAX_CHARS);
        assert_eq!(shown(&exact), exact);
        let long = format!("{exact}é");
        assert_eq!(shown(&long), format!("{exact}…[{} bytes]", long.len()));
        let escaped_long = "\n".repeat(1000);
        assert_eq!(
            shown(&escaped_long),
            format!("{}…[1000 bytes]", r"\n".repeat(LOG_SAFE_MAX_CHARS))
        );
        assert_eq!(format!("{:?}", log_safe("a\"\n")), r#""a"\n""#);
    }
}
