//! What a per-key write of session data costs against a whole-data save, on Redis.
//!
//! - Baseline: `save_data` (what `AuthSession::insert` did before issue 13: the whole data,
//!   encoded by the client, spliced into the record by `save_data.lua`).
//! - Subject: `update_data` setting one key (`update_data.lua`: reads the record, scans the top
//!   level of the JSON data, replaces one member, writes the record back).
//!
//! Three shapes of data: 3 keys (≈ 60 B), 20 keys (≈ 1 KB), 300 keys (≈ 60 KB, near the 64 KiB
//! limit). 1 000 sessions per shape, chosen uniformly; concurrency 1 and 8. Each side runs
//! alternately in rounds; reported: throughput and Redis's CPU per call (`INFO commandstats`,
//! `evalsha`: both sides are one script call).

use std::time::Duration;

use session_benches::{
    alternate, drive_measured, fmt_ops, progress, quick, start_redis, Row, Sample, Spread,
};
use session_core::{DataChanges, NewSession, SessionData, SessionStore, Token};

const BENCH: &str = "data_write";
const SESSIONS: usize = 1000;

fn main() {
    session_benches::main_with(BENCH, run);
}

/// `keys` keys whose values are `value_len`-byte strings.
fn data(keys: usize, value_len: usize) -> SessionData {
    let mut data = SessionData::new();
    for k in 0..keys {
        data.insert(format!("key-{k:03}"), &"v".repeat(value_len))
            .expect("a string is JSON");
    }
    data
}

async fn run() -> Vec<Row> {
    let (rounds, side) = if quick() {
        (2, Duration::from_millis(200))
    } else {
        (6, Duration::from_secs(1))
    };
    let (_server, store) = start_redis().await;
    let mut rows = Vec::new();
    for (shape, keys, value_len) in [
        ("3 keys, 60 B", 3, 8),
        ("20 keys, 1 KB", 20, 36),
        ("300 keys, 60 KB", 300, 190),
    ] {
        let data = data(keys, value_len);
        let encoded = json_len(&data);
        progress(format!("{BENCH}: {shape} ({encoded} bytes of JSON)"));
        let mut tokens = Vec::with_capacity(SESSIONS);
        for i in 0..SESSIONS {
            let (token, _) = store
                .create(NewSession::new(format!("user-{i}")).with_data(data.clone()))
                .await
                .expect("create");
            tokens.push(token);
        }
        let tokens: &'static [Token] = Box::leak(tokens.into_boxed_slice());
        let whole: &'static SessionData = Box::leak(Box::new(data));
        for level in [1usize, 8] {
            let alt = alternate(
                rounds,
                || {
                    drive_measured(store, "evalsha", level, side, move |seed| async move {
                        let token = &tokens[seed as usize % SESSIONS];
                        store.save_data(token, whole).await.expect("save_data");
                    })
                },
                || {
                    drive_measured(store, "evalsha", level, side, move |seed| async move {
                        let token = &tokens[seed as usize % SESSIONS];
                        let mut changes = DataChanges::new();
                        changes
                            .set(format!("key-{:03}", seed as usize % keys), &seed)
                            .expect("a number is JSON");
                        store
                            .update_data(token, &changes)
                            .await
                            .expect("update_data");
                    })
                },
            )
            .await;
            rows.extend(level_rows(shape, level, &alt));
        }
    }
    rows
}

/// The data's JSON length: `{"k":v,...}`.
fn json_len(data: &SessionData) -> usize {
    1 + data
        .iter()
        .map(|(k, v)| k.len() + 4 + v.to_string().len())
        .sum::<usize>()
}

fn level_rows(shape: &str, level: usize, alt: &Alternation) -> Vec<Row> {
    let thr = Spread::of(&alt.per_round(|b, s| s.run.throughput() / b.run.throughput()));
    let (bt, st) = alt.medians(|m| m.run.throughput());
    let cpu = Spread::of(&alt.per_round(|b, s| s.server_us / b.server_us));
    let (bc, sc) = alt.medians(|m| m.server_us);
    vec![
        Row::from_spread(
            BENCH,
            format!("update_data (one key) vs save_data (whole), throughput, {shape}, {level} task(s)"),
            format!("save_data {}", fmt_ops(bt)),
            format!("update_data {}", fmt_ops(st)),
            thr,
            "info",
        ),
        Row::from_spread(
            BENCH,
            format!("update_data vs save_data, Redis CPU per call (commandstats), {shape}, {level} task(s)"),
            format!("{bc:.2} µs"),
            format!("{sc:.2} µs"),
            cpu,
            "info (lower is better)",
        ),
    ]
}

type Alternation = session_benches::Alternation<Sample>;
