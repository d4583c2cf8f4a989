//! How the Lua scripts are built: each is loaded once (`EVALSHA`; the body is sent again only
//! after `NOSCRIPT`), and each owner (an engine, the one-key operations, the throttle) holds
//! its own.
//!
//! The record layout has one source, `record.rs`: every script starts with the layout table
//! generated from its constants ([`layout_prelude`]: each field's position and width), and the
//! scripts that take a record apart share the helpers of `record.lua` (`is_record`, `uint`,
//! `user_of`, `authz_span`). No script spells a number of the layout (a test below checks).

use redis::Script;

use crate::device::{NETWORK_TAG_OFFSET, NETWORK_V4_BYTES, NETWORK_V6_BYTES};
use crate::record::{
    AUTHZ_LEN_BYTES, AUTH_TIME_OFFSET, CREATED_OFFSET, DEADLINE_OFFSET, DEVICE_LEN_BYTES,
    FORMAT_VERSION, LAST_SEEN_OFFSET, MAX_DATA_LEN, TIME_BYTES, USER_LEN_BYTES, USER_LEN_OFFSET,
    VERSION_OFFSET,
};

/// The record layout as Lua constants: each field's 1-based position (Lua's `string.byte`,
/// `string.sub` and `struct.unpack` count from 1; `record.rs`'s offsets from 0) and its width
/// in bytes; the lengths before the device block and the roles block are read at run time.
pub(crate) fn layout_prelude() -> String {
    let field = |name: &str, offset: usize, width: usize| {
        format!("local {name}, {name}_W = {}, {width}\n", offset + 1)
    };
    [
        "-- The record layout, generated from record.rs: positions (1-based), widths (bytes).\n"
            .to_owned(),
        format!("local FORMAT, MAX_DATA = {FORMAT_VERSION}, {MAX_DATA_LEN}\n"),
        field("VERSION", VERSION_OFFSET, 1),
        field("DEADLINE", DEADLINE_OFFSET, TIME_BYTES),
        field("LAST_SEEN", LAST_SEEN_OFFSET, TIME_BYTES),
        field("CREATED", CREATED_OFFSET, TIME_BYTES),
        field("AUTH_TIME", AUTH_TIME_OFFSET, TIME_BYTES),
        field("USER_LEN", USER_LEN_OFFSET, USER_LEN_BYTES),
        format!("local DEVICE_LEN_W, AUTHZ_LEN_W = {DEVICE_LEN_BYTES}, {AUTHZ_LEN_BYTES}\n"),
        format!(
            "local NET_TAG, NET_V4_W, NET_V6_W = {}, {NETWORK_V4_BYTES}, {NETWORK_V6_BYTES}\n",
            NETWORK_TAG_OFFSET + 1
        ),
    ]
    .concat()
}

/// The helpers that read a record, for the scripts that take one apart.
const RECORD_HELPERS: &str = include_str!("record.lua");

/// A script with the layout table: enough for one that reads the fixed header (the hot path
/// builds no helper closures).
pub(crate) fn plain(body: &str) -> Script {
    Script::new(&format!("{}{body}", layout_prelude()))
}

/// A script with the layout table and `record.lua`'s helpers, for one that finds the user id,
/// the device block or the roles block.
pub(crate) fn reading_records(body: &str) -> Script {
    Script::new(&format!("{}{RECORD_HELPERS}{body}", layout_prelude()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_names_each_field_where_record_rs_puts_it() {
        assert_eq!(
            layout_prelude(),
            "-- The record layout, generated from record.rs: positions (1-based), widths (bytes).\n\
             local FORMAT, MAX_DATA = 3, 65536\n\
             local VERSION, VERSION_W = 1, 1\n\
             local DEADLINE, DEADLINE_W = 2, 6\n\
             local LAST_SEEN, LAST_SEEN_W = 8, 6\n\
             local CREATED, CREATED_W = 14, 6\n\
             local AUTH_TIME, AUTH_TIME_W = 20, 6\n\
             local USER_LEN, USER_LEN_W = 26, 1\n\
             local DEVICE_LEN_W, AUTHZ_LEN_W = 2, 2\n\
             local NET_TAG, NET_V4_W, NET_V6_W = 2, 3, 6\n",
            "the layout changed: check every script's use of it"
        );
    }

    /// Every script of the store, as included.
    const SCRIPTS: [(&str, &str); 21] = [
        ("record.lua", RECORD_HELPERS),
        ("bind_device.lua", include_str!("bind_device.lua")),
        ("compare_delete.lua", include_str!("compare_delete.lua")),
        ("create.lua", include_str!("create.lua")),
        ("delete.lua", include_str!("delete.lua")),
        ("delete_members.lua", include_str!("delete_members.lua")),
        ("delete_others.lua", include_str!("delete_others.lua")),
        ("evict.lua", include_str!("evict.lua")),
        ("history_add.lua", include_str!("history_add.lua")),
        ("index_add.lua", include_str!("index_add.lua")),
        ("list.lua", include_str!("list.lua")),
        ("load.lua", include_str!("load.lua")),
        ("mark_and_list.lua", include_str!("mark_and_list.lua")),
        ("rotate.lua", include_str!("rotate.lua")),
        ("save_data.lua", include_str!("save_data.lua")),
        ("set_authz.lua", include_str!("set_authz.lua")),
        ("splice_authz.lua", include_str!("splice_authz.lua")),
        ("throttle_check.lua", include_str!("throttle_check.lua")),
        ("throttle_fail.lua", include_str!("throttle_fail.lua")),
        ("throttle_release.lua", include_str!("throttle_release.lua")),
        ("update_data.lua", include_str!("update_data.lua")),
    ];

    /// The layout's names, as the prelude defines them.
    const LAYOUT_NAMES: [&str; 8] = [
        "VERSION",
        "DEADLINE",
        "LAST_SEEN",
        "CREATED",
        "AUTH_TIME",
        "USER_LEN",
        "DEVICE_LEN",
        "AUTHZ_LEN",
    ];

    /// What would mean a script knows a number of the layout instead of reading the prelude:
    /// a `struct` format with a width (`'>I6'`), a position (`string.byte(v, 1)`), or a width
    /// added to a field's position (`AUTH_TIME + 6`).
    fn layout_literals(code: &str) -> Vec<String> {
        let mut found = Vec::new();
        let bytes = code.as_bytes();
        let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
        for (i, _) in code.match_indices("I") {
            if i > 0 && bytes[i - 1] == b'>' && digit_at(i + 1) {
                found.push(code[i - 1..i + 2].to_owned());
            }
        }
        for (i, m) in code.match_indices("string.byte(v, ") {
            if digit_at(i + m.len()) {
                found.push(code[i..i + m.len() + 1].to_owned());
            }
        }
        for name in LAYOUT_NAMES {
            // `DEADLINE + 6`; not `DEADLINE_W + ...`, `USER_LEN + USER_LEN_W`, nor
            // `LAST_SEEN - 1` (the byte before the field: Lua's 1-based counting).
            let spelled = format!("{name} + ");
            for (i, m) in code.match_indices(&spelled) {
                let before = i.checked_sub(1).map(|b| bytes[b]);
                let part_of_a_name = before.is_some_and(|b| b == b'_' || b.is_ascii_alphanumeric());
                if !part_of_a_name && digit_at(i + m.len()) {
                    found.push(code[i..i + m.len() + 1].to_owned());
                }
            }
        }
        found
    }

    /// The layout has one source: a script that spelled a width or a position itself would
    /// go on reading the old layout after `record.rs` changed it.
    #[test]
    fn no_script_spells_a_number_of_the_layout() {
        for (name, source) in SCRIPTS {
            // Comments may say what a field is ("the label's 2-byte length").
            let code: String = source
                .lines()
                .map(|line| line.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            let found = layout_literals(&code);
            assert!(found.is_empty(), "{name} spells the layout: {found:?}");
        }
        // The check itself finds what it is for.
        assert_eq!(
            layout_literals("struct.unpack('>I6', v, DEADLINE) string.byte(v, 1) AUTH_TIME + 6"),
            [">I6", "string.byte(v, 1", "AUTH_TIME + 6"]
        );
        assert!(layout_literals(
            "AUTH_TIME + AUTH_TIME_W, LAST_SEEN - 1, USER_LEN_W + 1, '>I' .. W"
        )
        .is_empty());
    }
}
