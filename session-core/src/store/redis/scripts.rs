//! The Lua scripts, loaded once (EVALSHA; the body is sent again only after `NOSCRIPT`).

use redis::Script;

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        pub(crate) struct Scripts {
            $(pub(crate) $name: Script,)*
        }

        impl Scripts {
            pub(crate) fn new() -> Self {
                Self {
                    $($name: Script::new(include_str!(concat!(stringify!($name), ".lua"))),)*
                }
            }
        }
    };
}

scripts!(
    // One key each: every topology.
    load,
    save_data,
    update_data,
    throttle_check,
    throttle_fail,
    throttle_release,
    take,
    read_ttl,
    compare_delete,
    splice_authz,
    index_add,
    mark_role_change,
    // Session keys and the user's index together: single server and Sentinel only.
    evict,
    apply_role_change,
    rotate,
    delete,
    list,
    delete_members,
    set_authz,
    delete_others,
);
