//! Guard overhead, in process (no Redis): what `#[has_role("ADMIN")]` adds to a request.
//!
//! One axum `Router` with a `SessionLayer` over a `MemoryStore` holding one session (roles
//! `ADMIN`, `USER`), two routes running the same handler body: `/admin`, guarded with
//! `#[has_role("ADMIN")]`, and `/plain`, unguarded. A second router without the layer serves
//! `/plain` too. Every request carries the valid cookie `__Host-session=<token>` and goes through
//! `tower::ServiceExt::oneshot` on a clone of the router, in a loop on one thread. The three
//! sides run alternately in rounds (the first side rotates each round); each side of a round is
//! a time slice, reported as ns per request.
//!
//! Main ratio: guarded / unguarded-with-layer (the guard's own cost: one store load plus the
//! role check). Informational: guarded / bare router (the layer's cost as well).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request, StatusCode};
use session_benches::{
    at_most, median, print_table, progress, quick, skip_unless_bench, Row, Spread,
};
use session_core::axum::SessionLayer;
use session_core::{has_role, MemoryStore, NewSession, SessionConfig, SessionStore};
use tower::ServiceExt;

const BENCH: &str = "guard";

async fn body() -> &'static str {
    "ok"
}

#[has_role("ADMIN")]
async fn guarded() -> &'static str {
    body().await
}

async fn plain() -> &'static str {
    body().await
}

fn main() {
    if skip_unless_bench(BENCH) {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows = rt.block_on(run());
    print_table(&rows);
}

/// Sends `GET path` with the cookie through `app` for `slice`; ns per request.
async fn slice(app: &Router, path: &str, cookie: &str, slice: Duration) -> f64 {
    let start = Instant::now();
    let mut n: u64 = 0;
    // Check the clock every 64 requests, so that reading it costs nothing measurable.
    while start.elapsed() < slice {
        for _ in 0..64 {
            let req = Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .expect("request");
            let res = app.clone().oneshot(req).await.expect("infallible");
            debug_assert_eq!(res.status(), StatusCode::OK);
            std::hint::black_box(res);
        }
        n += 64;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

async fn run() -> Vec<Row> {
    let (rounds, side) = if quick() {
        (3, Duration::from_millis(100))
    } else {
        (15, Duration::from_millis(600))
    };
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let (token, _) = store
        .create(NewSession::new("alice").with_roles(["ADMIN", "USER"]))
        .await
        .expect("create");
    let cookie = format!("__Host-session={}", token.as_cookie_value());
    let layered = Router::new()
        .route("/admin", get(guarded))
        .route("/plain", get(plain))
        .layer(SessionLayer::new(store));
    let bare = Router::new().route("/plain", get(plain));

    // Correctness of the set-up (not a timing check): the guard lets this session through, and
    // refuses a request without a cookie.
    for (app, path, cookie, want) in [
        (&layered, "/admin", cookie.as_str(), StatusCode::OK),
        (&layered, "/admin", "", StatusCode::UNAUTHORIZED),
        (&layered, "/plain", cookie.as_str(), StatusCode::OK),
        (&bare, "/plain", cookie.as_str(), StatusCode::OK),
    ] {
        let res = app
            .clone()
            .oneshot(
                Request::get(path)
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(res.status(), want, "{path} with cookie {cookie:?}");
    }

    let sides: [(&Router, &str); 3] = [
        (&layered, "/admin"),
        (&layered, "/plain"),
        (&bare, "/plain"),
    ];
    for (app, path) in sides {
        slice(app, path, &cookie, side / 2).await; // warm-up
    }
    progress(format!("{BENCH}: {rounds} rounds of {side:?} per side"));
    let mut ns: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let i = (round + k) % 3;
            let (app, path) = sides[i];
            ns[i].push(slice(app, path, &cookie, side).await);
        }
    }
    let [g, p, b] = &ns;
    let vs_plain = Spread::of(&g.iter().zip(p).map(|(g, p)| g / p).collect::<Vec<_>>());
    let vs_bare = Spread::of(&g.iter().zip(b).map(|(g, b)| g / b).collect::<Vec<_>>());
    let layer_only = Spread::of(&p.iter().zip(b).map(|(p, b)| p / b).collect::<Vec<_>>());
    let fmt = |v: &[f64]| format!("{:.0} ns/req", median(v));
    vec![
        Row::from_spread(
            BENCH,
            "#[has_role(\"ADMIN\")] GET vs unguarded GET, both with SessionLayer (MemoryStore)",
            format!("unguarded+layer {}", fmt(p)),
            format!("guarded {}", fmt(g)),
            vs_plain,
            at_most(1.2, vs_plain.median),
        ),
        Row::from_spread(
            BENCH,
            "#[has_role(\"ADMIN\")] GET vs bare router (no layer)",
            format!("bare {}", fmt(b)),
            format!("guarded {}", fmt(g)),
            vs_bare,
            "info",
        ),
        Row::from_spread(
            BENCH,
            "unguarded GET with SessionLayer vs bare router (the layer alone)",
            format!("bare {}", fmt(b)),
            format!("unguarded+layer {}", fmt(p)),
            layer_only,
            "info",
        ),
    ]
}
