//! [`log_safe`]: client text made fit for a log line.
//!
//! Usernames, path segments and headers come from whoever sends the request. Written to a log
//! as they are, a `\n` starts a line the attacker wrote (`x\n2026-01-01 INFO login user=admin`),
//! terminal escapes recolour or hide lines for whoever reads the log in a terminal, 16 KB of
//! text buries everything around it, and a space and a quote add fields of the attacker's own
//! to a `key=value` line (`user=x event="login" user=admin`). [`log_safe`] wraps such text so
//! that its `Display` is one bounded, quoted token: one field, whatever the text holds.

use std::fmt::{self, Write as _};

/// How many characters of client text a log field shows; the rest is replaced by a marker.
pub const LOG_SAFE_MAX_CHARS: usize = 128;

/// Wraps client-controlled `text` for logging: its `Display` is the text in double quotes, with
/// quotes and control characters escaped, cut to [`LOG_SAFE_MAX_CHARS`] characters plus a
/// marker saying how long it was.
///
/// - the output always starts and ends with `"`, and a `"` in the text becomes `\"`: in a
///   `key=value` line (tracing's fmt output, logfmt) the field's value ends at the closing
///   quote, so text like ` event="login" user=admin` cannot add fields of its own;
/// - `\n`, `\r` and `\t` become `\n`, `\r`, `\t`; a backslash becomes `\\` (so an escape in the
///   output always came from this function, never from the client);
/// - every other control character (C0, DEL, C1, so also the ANSI escape `ESC`), the line and
///   paragraph separators U+2028/U+2029 and the bidirectional overrides (U+202A–U+202E,
///   U+2066–U+2069, which reorder how a line is shown) becomes `\u{..}`;
/// - text longer than [`LOG_SAFE_MAX_CHARS`] characters shows its first 128 and then
///   `…[N bytes]` (inside the quotes), N being the whole length in bytes.
///
/// Formatting allocates nothing. `Debug` shows the same as `Display`. Use it for every log
/// field that holds client text:
///
/// ```
/// use session_core::logging::log_safe;
///
/// let username = "x\nFAKE LINE \u{1b}[31m";
/// assert_eq!(log_safe(username).to_string(), r#""x\nFAKE LINE \u{1b}[31m""#);
/// tracing::info!(user = %log_safe(username), "failed login");
///
/// // One field, whatever the text: the quote that would end it is escaped.
/// let forged = r#"bob" event="login" user="admin"#;
/// assert_eq!(
///     log_safe(forged).to_string(),
///     r#""bob\" event=\"login\" user=\"admin""#
/// );
///
/// let long = "a".repeat(20_000);
/// let shown = log_safe(&long).to_string();
/// assert!(shown.starts_with(&format!("\"{}", "a".repeat(128))));
/// assert!(shown.ends_with("…[20000 bytes]\""));
/// assert_eq!(log_safe("alice").to_string(), r#""alice""#);
/// ```
pub fn log_safe(text: &str) -> impl fmt::Display + fmt::Debug + Copy + '_ {
    LogSafe(text)
}

/// Client text that displays escaped and bounded; made by [`log_safe`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct LogSafe<'a>(&'a str);

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for (shown, c) in self.0.chars().enumerate() {
            if shown == LOG_SAFE_MAX_CHARS {
                return write!(f, "…[{} bytes]\"", self.0.len());
            }
            match c {
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                c if needs_escape(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

impl fmt::Debug for LogSafe<'_> {
    /// The same as `Display` (so `?field` shows the quoted, escaped text too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
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
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;

    fn shown(s: &str) -> String {
        log_safe(s).to_string()
    }

    /// `inner` in the quotes every output has.
    fn quoted(inner: &str) -> String {
        format!("\"{inner}\"")
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
            assert_eq!(shown(input), quoted(expected), "{input:?}");
        }
        let all: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        let out = shown(&all);
        assert!(!out.chars().any(needs_escape), "{out:?}");
    }

    #[test]
    fn quotes_are_escaped_so_the_text_stays_one_token() {
        for (input, expected) in [
            (r#"a"b"#, r#"a\"b"#),
            (r#"""#, r#"\""#),
            (r#"\""#, r#"\\\""#),
            (r#"x" user="admin"#, r#"x\" user=\"admin"#),
        ] {
            assert_eq!(shown(input), quoted(expected), "{input:?}");
        }
        // Every quote inside is escaped: the output ends at its last character, and nowhere
        // before (a quote preceded by an odd number of backslashes is escaped).
        for input in [r#"a"b"#, r#"\"#, r#"\\""#, r#""\"\\"#, "\"\n\""] {
            let out = shown(input);
            let body = &out[1..out.len() - 1];
            for (i, _) in body.match_indices('"') {
                let slashes = body[..i].chars().rev().take_while(|&c| c == '\\').count();
                assert!(slashes % 2 == 1, "unescaped quote in {out:?}");
            }
            assert!(
                body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 0,
                "the closing quote is escaped in {out:?}"
            );
        }
    }

    #[test]
    fn long_text_is_cut_with_a_marker_and_short_text_is_not() {
        let exact = "é".repeat(LOG_SAFE_MAX_CHARS);
        assert_eq!(shown(&exact), quoted(&exact));
        let long = format!("{exact}é");
        assert_eq!(
            shown(&long),
            quoted(&format!("{exact}…[{} bytes]", long.len()))
        );
        let escaped_long = "\n".repeat(1000);
        assert_eq!(
            shown(&escaped_long),
            quoted(&format!(
                "{}…[1000 bytes]",
                r"\n".repeat(LOG_SAFE_MAX_CHARS)
            ))
        );
        let quotes = "\"".repeat(1000);
        assert_eq!(
            shown(&quotes),
            quoted(&format!(
                "{}…[1000 bytes]",
                r#"\""#.repeat(LOG_SAFE_MAX_CHARS)
            ))
        );
        assert_eq!(format!("{:?}", log_safe("a\"\n")), r#""a\"\n""#);
    }

    /// The fields of a `key=value` line as a reader of it splits them: at spaces outside
    /// double quotes, a backslash escaping the next character inside them.
    fn fields(line: &str) -> Vec<String> {
        let (mut out, mut field, mut quoted, mut escaped) =
            (Vec::new(), String::new(), false, false);
        for c in line.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    out.push(std::mem::take(&mut field));
                    continue;
                }
                _ => {}
            }
            field.push(c);
        }
        out.push(field);
        out.retain(|f| !f.is_empty());
        out
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_username_cannot_add_fields_to_a_tracing_fmt_line() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let username = r#"bob event="login" user=admin"#;
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(event = "login_failed", user = %log_safe(username), "failed login");
            tracing::info!(event = "login_failed", user = ?log_safe(username), "failed login");
        });
        let text = String::from_utf8_lossy(&out.0.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            let fields = fields(line);
            let users: Vec<&String> = fields.iter().filter(|f| f.starts_with("user=")).collect();
            assert_eq!(
                users,
                [&format!("user={}", r#""bob event=\"login\" user=admin""#)],
                "{line}"
            );
            let events: Vec<&String> = fields.iter().filter(|f| f.starts_with("event=")).collect();
            assert_eq!(events, [&"event=\"login_failed\"".to_owned()], "{line}");
        }
    }
}
