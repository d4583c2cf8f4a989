//! The Lua scripts, loaded once (EVALSHA; the body is sent again only after `NOSCRIPT`).
//!
//! The record layout has one source, `record.rs`: every script starts with the positions of
//! the header's fields as Lua constants generated from its offsets ([`layout_prelude`]), and the
//! scripts that take a record apart share the helpers of `record.lua` (`is_record`, `user_of`,
//! `authz_span`) rather than each spelling the layout again.

use redis::Script;

use crate::record::{
    AUTH_TIME_OFFSET, CREATED_OFFSET, DEADLINE_OFFSET, FORMAT_VERSION, LAST_SEEN_OFFSET,
    USER_LEN_OFFSET,
};

/// The header's fields as Lua constants: 1-based positions (Lua's `string.byte`/`sub`/
/// `struct.unpack` count from 1), from the 0-based offsets in `record.rs`.
pub(crate) fn layout_prelude() -> String {
    format!(
        "-- The record layout, generated from record.rs (1-based positions).\n\
         local FORMAT, DEADLINE, LAST_SEEN, CREATED, AUTH_TIME, USER_LEN = {}, {}, {}, {}, {}, {}\n",
        FORMAT_VERSION,
        DEADLINE_OFFSET + 1,
        LAST_SEEN_OFFSET + 1,
        CREATED_OFFSET + 1,
        AUTH_TIME_OFFSET + 1,
        USER_LEN_OFFSET + 1,
    )
}

/// The helpers that read a record, for the scripts that take one apart.
const RECORD_HELPERS: &str = include_str!("record.lua");

macro_rules! scripts {
    (plain: [$($plain:ident),* $(,)?], reading_records: [$($reader:ident),* $(,)?] $(,)?) => {
        pub(crate) struct Scripts {
            $(pub(crate) $plain: Script,)*
            $(pub(crate) $reader: Script,)*
        }

        impl Scripts {
            pub(crate) fn new() -> Self {
                let prelude = layout_prelude();
                Self {
                    $($plain: Script::new(&format!(
                        "{prelude}{}",
                        include_str!(concat!(stringify!($plain), ".lua"))
                    )),)*
                    $($reader: Script::new(&format!(
                        "{prelude}{RECORD_HELPERS}{}",
                        include_str!(concat!(stringify!($reader), ".lua"))
                    )),)*
                }
            }
        }
    };
}

scripts!(
    // The hot path reads the header with the constants alone (no helper closures to build).
    plain: [
        // One key each: every topology.
        load,
        throttle_check,
        throttle_fail,
        throttle_release,
        compare_delete,
        index_add,
        mark_and_list,
        // Takes the layout it needs as arguments (and has the prelude too).
        update_data,
        // Session keys and the user's index together: single server and Sentinel only.
        evict,
        create,
        list,
        delete_members,
        delete_others,
    ],
    reading_records: [
        // One key each: every topology.
        save_data,
        splice_authz,
        // Session keys and the user's index together: single server and Sentinel only.
        rotate,
        delete,
        set_authz,
    ],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_names_each_field_where_record_rs_puts_it() {
        let prelude = layout_prelude();
        assert!(
            prelude.contains("= 2, 2, 8, 14, 20, 26\n"),
            "the layout changed: check every script's use of it\n{prelude}"
        );
    }
}
