//! Property tests of the record format: whatever a session can hold comes back from
//! `encode` / `decode` exactly, and encoding is a fixed point.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// Any text (control characters, astral planes) of up to `max` characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max).prop_map(|c| c.into_iter().collect())
}

/// User ids the store accepts (1 to 255 bytes of UTF-8).
fn user_id() -> impl Strategy<Value = String> {
    text(60).prop_filter("a usable user id", |u| check_user_id(u).is_ok())
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Finite floats: JSON has no NaN or infinities (serde_json writes them as null).
        (-1e300f64..1e300).prop_map(Value::from),
        text(20).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(8), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn data() -> impl Strategy<Value = SessionData> {
    proptest::collection::btree_map(text(12), json(), 0..5).prop_map(SessionData)
}

fn record() -> impl Strategy<Value = Record> {
    let ms = 0..=MAX_MS;
    (
        (ms.clone(), ms.clone(), ms.clone(), ms),
        user_id(),
        (
            text(300),
            proptest::option::of(any::<std::net::IpAddr>()),
            "[A-Za-z0-9._-]{0,32}",
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..300)),
        ),
        proptest::collection::vec(text(16), 0..6),
        proptest::collection::vec(text(16), 0..6),
        data(),
    )
        .prop_map(
            |(
                (deadline_ms, last_seen_ms, created_ms, auth_time_ms),
                user_id,
                (label, ip, method, remembered, new_device, bound_key),
                r,
                p,
                data,
            )| {
                Record {
                    deadline_ms,
                    last_seen_ms,
                    created_ms,
                    auth_time_ms,
                    user_id,
                    device: Device {
                        label: bounded_label(label),
                        network: ip.map(Network::of),
                        method,
                        remembered,
                        new_device,
                        impersonator: String::new(),
                        // A device binding (DBSC) of any key bytes, made now.
                        binding: bound_key.map(|key| {
                            crate::binding::DeviceBinding::register(key, created_ms, 600_000)
                                .expect("a key of 1 to 300 bytes")
                                .binding
                        }),
                    },
                    authz: Authz {
                        roles: normalized(r),
                        permissions: normalized(p),
                    },
                    data,
                    ended: None,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_record_round_trips(record in record()) {
        let bytes = record.encode().unwrap();
        let back = Record::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &record);
        // A fixed point: what was decoded encodes to the very same bytes.
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    #[test]
    fn any_anonymous_record_round_trips_and_one_with_roles_is_refused(mut record in record()) {
        let roles = record.authz.clone();
        record.user_id = String::new();
        record.authz = Authz::default();
        let bytes = record.encode().unwrap();
        let back = Record::decode(&bytes).unwrap();
        prop_assert!(back.is_anonymous());
        prop_assert_eq!(&back, &record);
        prop_assert_eq!(back.encode().unwrap(), bytes);
        // The same bytes with roles or permissions spliced in: never an anonymous session
        // with authority.
        if roles != Authz::default() {
            record.authz = roles.clone();
            prop_assert!(record.encode().is_err(), "an anonymous record with roles encodes");
            let mut with_roles = Record { user_id: "x".to_owned(), ..record.clone() }.encode().unwrap();
            // Drop the one-byte user id: an empty user with the roles block after it.
            with_roles.remove(USER_LEN_OFFSET + 1);
            with_roles[USER_LEN_OFFSET] = 0;
            prop_assert!(matches!(Record::decode(&with_roles), Err(Error::Corrupt(_))));
        }
    }

    #[test]
    fn any_authorization_block_round_trips(record in record()) {
        let block = record.authz.encode_block().unwrap();
        prop_assert_eq!(Authz::decode_block(&block).unwrap(), record.authz);
    }

    #[test]
    fn any_cut_of_a_record_is_refused_or_the_same_record(record in record(), cut in any::<prop::sample::Index>()) {
        let bytes = record.encode().unwrap();
        let cut = cut.index(bytes.len());
        // Only cutting off the whole data part leaves a record (with no data).
        if let Ok(back) = Record::decode(&bytes[..cut]) {
            prop_assert!(back.data.is_empty());
            prop_assert_eq!(back.user_id, record.user_id);
        }
    }

    /// Whatever the shape (arrays and objects mixed, up to past what serde_json reads), a value
    /// is accepted exactly when the data holding it nests at most `MAX_DATA_DEPTH` levels, and
    /// accepted data reads back: nothing written is unreadable.
    #[test]
    fn data_is_accepted_up_to_max_data_depth_and_what_is_accepted_reads_back(
        spine in proptest::collection::vec(any::<bool>(), 0..=130),
        leaf in json(),
    ) {
        let value = spine.iter().fold(leaf, |inner, &array| {
            if array {
                Value::Array(vec![inner])
            } else {
                Value::Object([("k".to_owned(), inner)].into_iter().collect())
            }
        });
        // The data's own object is one level more than the value.
        let data_depth = 1 + depth(&value);
        let fits = data_depth <= MAX_DATA_DEPTH;
        let mut data = SessionData::new();
        let inserted = data.insert("v", &value);
        prop_assert_eq!(inserted.is_ok(), fits, "{:?}", inserted);
        prop_assert_eq!(crate::DataChanges::new().set("v", &value).is_ok(), fits);
        let mut raw = SessionData::new();
        raw.insert_json("v".to_owned(), value);
        match raw.encode() {
            Ok(bytes) => {
                prop_assert!(fits);
                prop_assert_eq!(SessionData::decode(&bytes).unwrap(), raw);
            }
            Err(e) => {
                prop_assert!(!fits);
                prop_assert!(matches!(e, Error::InvalidInput(_)));
            }
        }
    }
}

/// How deep arrays and objects nest in `value` (a scalar: 0): the plain recursive definition,
/// to check the store's own walk against.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
