//! The conformance suite: the behaviour every [`SessionStore`] must have, as one async function
//! to call from a test with a factory for the store under test.
//!
//! The factory gets a [`SessionConfig`] per case (each with a key prefix of its own, so cases
//! never see each other's data even on a shared server) and returns a fresh store. Each case
//! panics with its name on failure.
//!
//! # Time
//! Every config the suite hands out carries a manual clock ([`Clock::manual`]) of its own (started at the
//! system's now), and a case lets time pass by moving it: auth times, last seen, the order of
//! a user's sessions, the absolute deadline are checked exactly and without waiting. A store
//! must therefore read "now" from the configuration's clock (every [`Storage`](crate::Storage)
//! does: its rules are session-core's).
//!
//! Two rules may be kept by a server's own timer instead: a session's **idle expiry** and the
//! **throttle window** are key TTLs in Redis, which pass in real time whatever the clock says.
//! The suite finds out which kind of store it has (a session unused while the clock moves past
//! the idle timeout, a lock while it moves past the window: still there?) and, for a store
//! that keeps its own time, runs those two cases on the system clock, where they wait in real
//! time: 56 ms for idle expiry, 35 ms for the throttle window. Their timing asserts check only
//! what the measured times prove (a load that must find a session live is judged only if it
//! came within the idle timeout of the previous use); a machine too busy for that makes the
//! case try again, three times at most. A store that follows the clock
//! ([`MemoryStore`](crate::MemoryStore), `examples/tests/it/external_store.rs`) runs the whole
//! suite without sleeping.
//!
//! The cases are private: [`run`] and `run_throttle` (feature `throttle`) run every one of
//! them, in a fixed order, and a failing case panics with its name.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng as _;

use crate::changes::update_value;
use crate::clock::ManualClock;
use crate::ended::EndReason;
use crate::history::{HistoryEntry, LoginEvent};
#[cfg(feature = "throttle")]
use crate::throttle::{LoginThrottle, ThrottleConfig};
use crate::{
    Clock, DataChanges, Error, NewSession, SessionConfig, SessionConfigBuilder, SessionData,
    SessionHandle, SessionStore, Token,
};

/// Idle timeout of the idle-expiry case: short, because on a store that keeps its own time
/// (Redis) the case waits 1.12 of it in real time (and the suite runs on several such stores).
/// Each load that must find the session live has 0.86 of it, 43 ms, to spare; a machine
/// busier than that makes the case try again.
const IDLE_CASE_TIMEOUT: Duration = Duration::from_millis(50);
#[cfg(feature = "throttle")]
/// Window of the throttle-window case (waited out in real time on such a store, plus 5 ms).
const THROTTLE_CASE_WINDOW: Duration = Duration::from_millis(30);

/// Runs every case of the suite against stores made by `make`, on manual clocks (the
/// idle-expiry case on the system clock for a store that keeps idle expiry by a timer of its
/// own; see the module docs).
///
/// # Panics
/// On the first case that fails, naming it.
pub async fn run<S, F, Fut>(make: F)
where
    S: SessionStore,
    F: Fn(SessionConfig) -> Fut,
    Fut: Future<Output = S>,
{
    let base = || {
        SessionConfig::builder()
            .key_prefix(unique_prefix())
            .clock(manual_clock())
    };
    let build = |b: SessionConfigBuilder| b.build().expect("valid test configuration");
    let idle_clock = idle_expiry_clock(&make).await;

    created_session_loads_with_its_contents(make(build(base())).await).await;
    unknown_and_deleted_tokens_give_none(make(build(base())).await).await;
    save_data_replaces_data_and_keeps_roles(make(build(base())).await).await;
    update_data_merges_per_key_and_checks_expectations(make(build(base())).await).await;
    update_data_keeps_every_json_value_exactly(make(build(base())).await).await;
    concurrent_writers_of_different_keys_lose_nothing(make(build(base())).await).await;
    concurrent_increments_of_one_key_all_count(make(build(base())).await).await;
    rotate_kills_the_old_token_and_keeps_the_session(make(build(base())).await).await;
    reauthenticate_rotates_and_refreshes_auth_time(make(build(base())).await).await;
    reauthenticate_keeps_every_field_and_the_index(make(build(base())).await).await;
    other_sessions_of_a_user_are_deleted_and_this_one_kept(make(build(base())).await).await;
    device_details_are_kept_and_listed(make(build(base())).await).await;
    a_device_binding_is_a_compare_and_set_that_keeps_the_rest(make(build(base())).await).await;
    an_impersonation_session_is_marked_and_time_boxed(
        make(build(base().impersonation_timeout(Duration::from_secs(60)))).await,
    )
    .await;
    // Last use is known to within the touch interval (a cached load slides the expiry no
    // more often): 1 ms here.
    user_sessions_are_listed_most_recently_used_first_with_handles(
        make(build(base().touch_interval(Duration::from_millis(1)))).await,
    )
    .await;
    sessions_are_deleted_by_handle_only_for_their_owner(make(build(base())).await).await;
    all_sessions_of_a_user_are_deleted(make(build(base())).await).await;
    role_removed_for_user_is_not_honoured_by_any_session(make(build(base())).await).await;
    login_in_flight_during_a_role_change_gets_the_new_roles(make(build(base())).await).await;
    logins_racing_role_removals_never_keep_the_removed_role(make(build(base())).await).await;
    logins_begun_before_the_sessions_were_ended_get_no_session(make(build(base())).await).await;
    logins_racing_account_changes_never_outlive_them(make(build(base())).await).await;
    per_user_limit_evicts_the_oldest(make(build(base().max_sessions_per_user(Some(2)))).await)
        .await;
    why_a_session_ended_is_told_to_its_own_token(
        make(build(base().max_sessions_per_user(Some(2)))).await,
    )
    .await;
    invalid_input_is_refused(make(build(base())).await).await;
    login_history_is_bounded_and_newest_first(
        make(build(
            base()
                .history_max(3)
                .history_max_age(Duration::from_secs(3600))
                .max_sessions_per_user(Some(1)),
        ))
        .await,
    )
    .await;
    no_history_is_kept_with_history_max_0(make(build(base().history_max(0))).await).await;
    last_seen_advances_after_the_touch_interval(
        make(build(base().touch_interval(Duration::from_millis(1)))).await,
    )
    .await;
    idle_timeout_slides_and_ends_an_unused_session(
        make(build(
            base()
                .clock(idle_clock.clone())
                .idle_timeout(IDLE_CASE_TIMEOUT)
                .absolute_timeout(Duration::from_secs(60))
                .max_sessions_per_user(Some(2)),
        ))
        .await,
    )
    .await;
    remembered_sessions_keep_their_own_limits(
        make(build(
            base()
                .clock(idle_clock.clone())
                .idle_timeout(IDLE_CASE_TIMEOUT)
                .absolute_timeout(Duration::from_secs(60))
                .remember_idle_timeout(Duration::from_secs(60))
                .remember_absolute_timeout(Duration::from_secs(120)),
        ))
        .await,
    )
    .await;
    absolute_timeout_ends_an_active_session(
        make(build(
            base()
                .idle_timeout(Duration::from_millis(600))
                .absolute_timeout(Duration::from_millis(900)),
        ))
        .await,
    )
    .await;
    concurrent_sessions_are_not_lost_or_mixed(make(build(base())).await).await;
    anonymous_sessions_keep_data_and_are_no_logins(
        make(build(base().max_sessions_per_user(Some(1)))).await,
    )
    .await;
}

/// A login begun ([`SessionStore::new_login`]) before the user's sessions were ended (a
/// password change ends the others: `delete_other_user_sessions`; "sign out everywhere":
/// `delete_user_sessions`) gets [`Error::LoginSuperseded`] and stores nothing; a login begun
/// afterwards, a login of another user, and a session made without `new_login` are not
/// affected.
async fn logins_begun_before_the_sessions_were_ended_get_no_session(store: impl SessionStore) {
    let (kept, _) = store
        .create(NewSession::new("alice"))
        .await
        .expect("create");
    let before = store.new_login("alice").await.expect("new_login");
    let bob = store.new_login("bob").await.expect("new_login");
    // Nothing ended yet: the epoch lets logins through, as often as it is used.
    for _ in 0..2 {
        store
            .create(before.clone())
            .await
            .expect("a login with a current epoch");
    }
    // A password change ends the other sessions: the login in flight gets none.
    store
        .delete_other_user_sessions("alice", &kept, EndReason::Revoked)
        .await
        .expect("end the others");
    let late = store.create(before.clone()).await;
    assert!(
        matches!(late, Err(Error::LoginSuperseded)),
        "a login begun before a password change got {late:?}"
    );
    let listed = store.list_user_sessions("alice").await.expect("list");
    assert_eq!(listed.len(), 1, "the refused login stored a session");
    assert!(store.load(&kept).await.expect("load").is_some());
    // Begun after the change: a session.
    let after = store.new_login("alice").await.expect("new_login");
    assert_ne!(after, before, "ending sessions gave no new epoch");
    store
        .create(after.clone())
        .await
        .expect("a login begun after the change");
    // "Sign out everywhere" refuses logins in flight too.
    store
        .delete_user_sessions("alice", EndReason::Revoked)
        .await
        .expect("end all");
    let late = store.create(after.clone()).await;
    assert!(
        matches!(late, Err(Error::LoginSuperseded)),
        "a login begun before the sessions were all ended got {late:?}"
    );
    assert!(store
        .list_user_sessions("alice")
        .await
        .expect("list")
        .is_empty());
    // Other users, and logins that carry no epoch, are not affected.
    store.create(bob).await.expect("another user's login");
    store
        .create(NewSession::new("alice"))
        .await
        .expect("a login without an epoch is not checked");
    // What `new_login` hands out is a session of that user (no other user's epoch can be
    // attached to a session: the store makes the pair), and it takes roles like any other.
    let carol = store.new_login("carol").await.expect("new_login");
    let (_, session) = store
        .create(carol.with_roles(["USER"]))
        .await
        .expect("carol's login");
    assert_eq!(session.user_id(), "carol");
    assert_eq!(session.roles(), ["USER"]);
    assert!(matches!(
        store.new_login("").await,
        Err(Error::InvalidInput(_))
    ));
}

/// Logins (epoch read, a pause, create) race account changes that end the user's sessions:
/// once a change has returned, no session made by a login that read the epoch before it is
/// alive, however the steps interleave.
async fn logins_racing_account_changes_never_outlive_them<S: SessionStore>(store: S) {
    let store = Arc::new(store);
    for round in 0..10 {
        let logins = (0..8).map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let epoch = store.new_login("alice").await.expect("new_login");
                for _ in 0..(i + round) % 4 {
                    tokio::task::yield_now().await;
                }
                let created = store.create(epoch.clone()).await;
                match created {
                    Ok((token, _)) => Some((epoch, token)),
                    Err(Error::LoginSuperseded) => None,
                    Err(e) => panic!("create: {e}"),
                }
            })
        });
        let logins: Vec<_> = logins.collect();
        for _ in 0..round % 3 {
            tokio::task::yield_now().await;
        }
        store
            .delete_user_sessions("alice", EndReason::Revoked)
            .await
            .expect("end all");
        let current = store.new_login("alice").await.expect("new_login");
        for login in logins {
            if let Some((epoch, token)) = login.await.expect("login task") {
                let alive = store.load(&token).await.expect("load").is_some();
                assert!(
                    epoch == current || !alive,
                    "round {round}: a login begun before the sessions were ended kept its session"
                );
            }
        }
    }
}

/// A login history keeps the newest entries up to its count, newest first, each dated by the
/// store's clock, none older than its age bound; the per-user limit's evictions are in it;
/// users' histories are apart.
async fn login_history_is_bounded_and_newest_first(store: impl SessionStore) {
    let name = "login_history_is_bounded_and_newest_first";
    let clock = store.config().clock().clone();
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let failed = HistoryEntry::new(LoginEvent::LoginFailed)
        .with_user_agent(firefox)
        .with_client_ip("203.0.113.9".parse().unwrap());
    store.record_event("otto", failed.clone()).await.unwrap();
    let events = [
        LoginEvent::Locked,
        LoginEvent::Login,
        LoginEvent::Logout,
        LoginEvent::PasswordChanged,
    ];
    for event in events {
        pass(&clock, Duration::from_millis(2)).await;
        store
            .record_event("otto", HistoryEntry::new(event))
            .await
            .unwrap();
    }
    let history = store.login_history("otto").await.unwrap();
    let listed: Vec<_> = history.iter().map(|e| e.event).collect();
    assert_eq!(
        listed,
        [
            LoginEvent::PasswordChanged,
            LoginEvent::Logout,
            LoginEvent::Login
        ],
        "{name}: the newest 3, newest first"
    );
    assert_eq!(
        history[0].at_ms(),
        clock.now_ms(),
        "{name}: dated by the store's clock"
    );
    assert!(history.windows(2).all(|w| w[0].at > w[1].at), "{name}");
    // The first entry's device, while it was kept.
    store.record_event("pia", failed).await.unwrap();
    let pia = store.login_history("pia").await.unwrap();
    assert_eq!(pia.len(), 1, "{name}: another user's history");
    assert_eq!(pia[0].browser.as_deref(), Some("Firefox"), "{name}");
    assert_eq!(pia[0].os.as_deref(), Some("Linux"), "{name}");
    assert_eq!(pia[0].network.as_deref(), Some("203.0.113.0/24"), "{name}");
    // Older than the age bound: gone.
    pass(&clock, Duration::from_secs(3601)).await;
    store
        .record_event("otto", HistoryEntry::new(LoginEvent::Reauth))
        .await
        .unwrap();
    let history = store.login_history("otto").await.unwrap();
    let listed: Vec<_> = history.iter().map(|e| e.event).collect();
    assert_eq!(listed, [LoginEvent::Reauth], "{name}: past the age bound");
    // The per-user limit (1 here) records each session it ends.
    store.create(NewSession::new("otto")).await.unwrap();
    store.create(NewSession::new("otto")).await.unwrap();
    let history = store.login_history("otto").await.unwrap();
    assert_eq!(history[0].event, LoginEvent::Evicted, "{name}: {history:?}");
    assert!(store.login_history("nobody").await.unwrap().is_empty());
    let refused = store
        .record_event("", HistoryEntry::new(LoginEvent::Login))
        .await;
    assert!(matches!(refused, Err(Error::InvalidInput(_))), "{name}");
}

/// With `history_max(0)` a store keeps no history.
async fn no_history_is_kept_with_history_max_0(store: impl SessionStore) {
    store
        .record_event("quinn", HistoryEntry::new(LoginEvent::Login))
        .await
        .unwrap();
    store.create(NewSession::new("quinn")).await.unwrap();
    assert!(
        store.login_history("quinn").await.unwrap().is_empty(),
        "no_history_is_kept_with_history_max_0"
    );
}

/// A key prefix no other case or run uses.
fn unique_prefix() -> String {
    format!("conformance-{:016x}", rand::rng().random::<u64>())
}

fn near(a: SystemTime, b: SystemTime, within: Duration) -> bool {
    let diff = a.duration_since(b).unwrap_or_else(|e| e.duration());
    diff <= within
}

/// A manual clock at the system's now (a store that also keeps time of its own, as Redis does
/// with key TTLs, then sees times close to its own).
fn manual_clock() -> ManualClock {
    ManualClock::new(SystemTime::now())
}

/// Lets `by` pass on `clock`: moves a manual clock, sleeps on the system clock.
async fn pass(clock: &Clock, by: Duration) {
    match clock.as_manual() {
        Some(manual) => manual.advance(by),
        None => tokio::time::sleep(by).await,
    }
}

/// The clock for the idle-expiry case: a manual one when `make`'s stores end a session unused
/// while their clock moves past the idle timeout, the system clock when they keep idle expiry
/// by a timer of their own (Redis key TTLs), so that the case waits for that timer.
async fn idle_expiry_clock<S, F, Fut>(make: &F) -> Clock
where
    S: SessionStore,
    F: Fn(SessionConfig) -> Fut,
    Fut: Future<Output = S>,
{
    let clock = manual_clock();
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .clock(clock.clone())
        .build()
        .expect("valid test configuration");
    let store = make(config).await;
    let (token, _) = store
        .create(NewSession::new("clock-probe"))
        .await
        .expect("create");
    clock.advance(Duration::from_millis(store.config().idle_ms(false)) + Duration::from_secs(1));
    let follows = store.load(&token).await.expect("load").is_none();
    store.delete(&token).await.expect("delete");
    if follows {
        manual_clock().into()
    } else {
        Clock::system()
    }
}

/// The clock for the throttle-window case: manual when `make`'s stores end a lock as their
/// clock moves past the window, else the system clock (the window is a timer of their own).
#[cfg(feature = "throttle")]
async fn throttle_window_clock<S, F, Fut>(make: &F) -> Clock
where
    S: LoginThrottle,
    F: Fn(SessionConfig) -> Fut,
    Fut: Future<Output = S>,
{
    let clock = manual_clock();
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .clock(clock.clone())
        .build()
        .expect("valid test configuration");
    let store = make(config).await;
    let window = Duration::from_secs(60);
    let limits = ThrottleConfig::new(1, window);
    store
        .begin_login("clock-probe", &limits)
        .await
        .expect("begin");
    store
        .record_failure("clock-probe", &limits)
        .await
        .expect("failure");
    clock.advance(window + Duration::from_secs(1));
    let follows = store
        .begin_login("clock-probe", &limits)
        .await
        .expect("begin")
        .is_none();
    store.clear_failures("clock-probe").await.expect("clear");
    if follows {
        manual_clock().into()
    } else {
        Clock::system()
    }
}

/// A session reads back with the user, sorted roles and permissions, data and times it was
/// created with.
async fn created_session_loads_with_its_contents(store: impl SessionStore) {
    let mut data = SessionData::new();
    data.insert("theme", "dark").unwrap();
    let (token, created) = store
        .create(
            NewSession::new("alice")
                .with_roles(["USER", "ADMIN", "USER"])
                .with_permissions(["orders:write"])
                .with_data(data.clone()),
        )
        .await
        .expect("create");
    let loaded = store.load(&token).await.expect("load").expect("live");
    assert_eq!(
        loaded.user_id(),
        "alice",
        "created_session_loads_with_its_contents"
    );
    assert_eq!(loaded.roles(), ["ADMIN", "USER"]);
    assert_eq!(loaded.permissions(), ["orders:write"]);
    assert!(loaded.has_role("ADMIN") && !loaded.has_role("admin"));
    assert!(loaded.has_permission("orders:write"));
    assert_eq!(loaded.data(), &data);
    assert_eq!(loaded.key(), token.key());
    assert_eq!(loaded.handle(), created.handle());
    assert_eq!(loaded.created_at(), created.created_at());
    assert!(near(
        loaded.created_at(),
        store.config().clock().now(),
        Duration::from_secs(5)
    ));
    let lifetime = loaded
        .expires_at()
        .duration_since(loaded.created_at())
        .expect("deadline after creation");
    assert_eq!(
        lifetime,
        Duration::from_millis(store.config().absolute_ms(false))
    );
}

/// Tokens that were never issued, or whose session was deleted, load as `None`.
async fn unknown_and_deleted_tokens_give_none(store: impl SessionStore) {
    let now = store.config().clock().now();
    let stranger = Token::generate(now + Duration::from_secs(3600)).unwrap();
    assert!(store.load(&stranger).await.expect("load").is_none());
    assert!(!store.delete(&stranger).await.expect("delete"));
    let (token, _) = store.create(NewSession::new("bob")).await.unwrap();
    assert!(store.delete(&token).await.expect("delete"));
    assert!(
        store.load(&token).await.unwrap().is_none(),
        "deleted session loaded"
    );
    assert!(!store.delete(&token).await.unwrap(), "deleted twice");
    assert!(store.list_user_sessions("bob").await.unwrap().is_empty());
}

/// Saving data replaces it and keeps user and roles; saving to an ended session is `NotFound`.
async fn save_data_replaces_data_and_keeps_roles(store: impl SessionStore) {
    let (token, _) = store
        .create(NewSession::new("carol").with_roles(["USER"]))
        .await
        .unwrap();
    let mut data = SessionData::new();
    data.insert("cart", &vec![1, 2, 3]).unwrap();
    store.save_data(&token, &data).await.expect("save");
    let loaded = store.load(&token).await.unwrap().expect("live");
    assert_eq!(
        loaded.data().get::<Vec<i32>>("cart").unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(loaded.roles(), ["USER"]);
    store.save_data(&token, &SessionData::new()).await.unwrap();
    assert!(store.load(&token).await.unwrap().unwrap().data().is_empty());
    store.delete(&token).await.unwrap();
    assert!(matches!(
        store.save_data(&token, &data).await,
        Err(Error::NotFound)
    ));
}

/// `update_data` sets and removes only the keys it names, keeps the roles, applies nothing when
/// an expectation fails (and answers with the data as stored), refuses oversized results
/// without changing anything, and is `NotFound` for an ended session.
async fn update_data_merges_per_key_and_checks_expectations(store: impl SessionStore) {
    let case = "update_data_merges_per_key_and_checks_expectations";
    let mut data = SessionData::new();
    data.insert("theme", "dark").unwrap();
    data.insert("flash", "saved").unwrap();
    let (token, _) = store
        .create(NewSession::new("erin").with_roles(["USER"]).with_data(data))
        .await
        .unwrap();
    let mut changes = DataChanges::new();
    changes.set("cart", &["apple"]).unwrap().remove("flash");
    let applied = store.update_data(&token, &changes).await.expect(case);
    let mut want = SessionData::new();
    want.insert("theme", "dark").unwrap();
    want.insert("cart", &["apple"]).unwrap();
    assert_eq!(applied, want.clone(), "{case}");
    let loaded = store.load(&token).await.unwrap().expect("live");
    assert_eq!(loaded.data(), &want, "{case}: as stored");
    assert_eq!(loaded.roles(), ["USER"], "{case}: roles kept");

    // Removing an absent key, and an empty set of changes, change nothing.
    let mut noop = DataChanges::new();
    noop.remove("never-set");
    assert_eq!(
        store.update_data(&token, &noop).await.unwrap(),
        want.clone(),
        "{case}: remove of an absent key"
    );
    assert_eq!(
        store
            .update_data(&token, &DataChanges::new())
            .await
            .unwrap(),
        want.clone(),
        "{case}: no changes"
    );

    // A failed expectation applies nothing, not even the other changes.
    let mut stale = DataChanges::new();
    stale
        .expect("theme", Some("light"))
        .unwrap()
        .set("theme", "blue")
        .unwrap()
        .set("other", &1)
        .unwrap();
    match store.update_data(&token, &stale).await {
        Err(Error::Conflict { data }) => assert_eq!(data, want, "{case}: stale expectation"),
        other => panic!("{case}: stale expectation: {other:?}"),
    }
    let mut absent = DataChanges::new();
    absent
        .expect::<u32>("cart", None)
        .unwrap()
        .set("x", &1)
        .unwrap();
    assert!(
        matches!(
            store.update_data(&token, &absent).await,
            Err(Error::Conflict { .. })
        ),
        "{case}: expected absent, but present"
    );
    let mut fresh = DataChanges::new();
    fresh
        .expect("theme", Some("dark"))
        .unwrap()
        .expect::<u32>("count", None)
        .unwrap()
        .set("count", &1)
        .unwrap();
    want.insert("count", &1).unwrap();
    assert_eq!(
        store.update_data(&token, &fresh).await.unwrap(),
        want.clone(),
        "{case}: expectations that hold"
    );

    // Too large once merged: refused, nothing changed.
    let mut big = DataChanges::new();
    big.set("big", &"x".repeat(crate::record::MAX_DATA_LEN - 10))
        .unwrap();
    assert!(
        matches!(
            store.update_data(&token, &big).await,
            Err(Error::InvalidInput(_))
        ),
        "{case}: oversized"
    );
    let loaded = store.load(&token).await.unwrap().expect("live");
    assert_eq!(loaded.data(), &want, "{case}: unchanged after the refusal");

    // Remove every key: the data is empty again.
    let mut clear = DataChanges::new();
    for key in ["theme", "cart", "count"] {
        clear.remove(key);
    }
    assert_eq!(
        store.update_data(&token, &clear).await.unwrap(),
        SessionData::new(),
        "{case}: all removed"
    );
    assert!(store.load(&token).await.unwrap().unwrap().data().is_empty());

    store.delete(&token).await.unwrap();
    assert!(
        matches!(
            store.update_data(&token, &changes).await,
            Err(Error::NotFound)
        ),
        "{case}: ended session"
    );
}

/// Values that a JSON merge could mangle (big integers, empty arrays and objects, brackets,
/// quotes and escapes inside strings, non-ASCII keys) read back exactly after per-key updates
/// around them, and compare equal to themselves as expectations.
async fn update_data_keeps_every_json_value_exactly(store: impl SessionStore) {
    let case = "update_data_keeps_every_json_value_exactly";
    let values = serde_json::json!({
        "big": u64::MAX,
        "negative": i64::MIN,
        "float": 0.1,
        "empty_array": [],
        "empty_object": {},
        "nested": {"a": [[], {}, [1, [2, {"b": "]}"}]], null], "c": true},
        "tricky \"key\" ]}{,:": "a \"quoted\" \\ string with ]} and {[ and , and :",
        "ünïcode ✓": "emoji 🙂 and \u{0} and \n",
        "ends in a backslash": "C:\\",
        "escaped quote last": "say \"hi\"",
        "backslashes then quote": "\\\\\"",
        "false": false,
        "null": null,
    });
    let serde_json::Value::Object(values) = values else {
        unreachable!("a JSON object literal")
    };
    let mut data = SessionData::new();
    for (key, value) in &values {
        data.insert(key.clone(), value).unwrap();
    }
    let (token, _) = store
        .create(NewSession::new("frank").with_data(data.clone()))
        .await
        .unwrap();
    // Set each one again, one at a time, expecting its current value.
    for (key, value) in &values {
        let mut changes = DataChanges::new();
        changes
            .expect_json(key.clone(), Some(value.clone()))
            .set(key.clone(), value)
            .unwrap();
        let update = store.update_data(&token, &changes).await.expect(case);
        assert_eq!(update, data.clone(), "{case}: {key}");
    }
    // Remove half of them and add them back: still exactly the same data.
    let keys: Vec<_> = values.keys().step_by(2).cloned().collect();
    let mut removal = DataChanges::new();
    for key in &keys {
        removal.remove(key.clone());
    }
    store
        .update_data(&token, &removal)
        .await
        .unwrap_or_else(|e| panic!("{case}: removal: {e}"));
    let mut back = DataChanges::new();
    for key in &keys {
        back.set(key.clone(), &values[key]).unwrap();
    }
    let update = store.update_data(&token, &back).await.expect(case);
    assert_eq!(update, data.clone(), "{case}: re-added");
    let loaded = store.load(&token).await.unwrap().expect("live");
    assert_eq!(loaded.data(), &data, "{case}: as loaded");
}

/// 50 writers of one session at once, each setting a key of its own: all 50 keys are there
/// afterwards (a load-change-save of the whole data would keep only some).
async fn concurrent_writers_of_different_keys_lose_nothing<S: SessionStore>(store: S) {
    let case = "concurrent_writers_of_different_keys_lose_nothing";
    const WRITERS: usize = 50;
    let store = Arc::new(store);
    let (token, _) = store.create(NewSession::new("grace")).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let token = token.clone();
            tokio::spawn(async move {
                let mut changes = DataChanges::new();
                changes.set(format!("item-{i}"), &i).unwrap();
                store.update_data(&token, &changes).await
            })
        })
        .collect();
    for writer in writers {
        writer
            .await
            .expect(case)
            .unwrap_or_else(|e| panic!("{case}: no expectation, so applied: {e}"));
    }
    let data = store
        .load(&token)
        .await
        .unwrap()
        .expect("live")
        .data()
        .clone();
    let missing: Vec<usize> = (0..WRITERS)
        .filter(|i| data.get::<usize>(&format!("item-{i}")).ok().flatten() != Some(*i))
        .collect();
    assert!(missing.is_empty(), "{case}: lost the writes of {missing:?}");
}

/// 50 concurrent increments of one counter through `update_value` (what `AuthSession::update` runs) count to exactly 50, and
/// each increment saw a different value.
async fn concurrent_increments_of_one_key_all_count<S: SessionStore>(store: S) {
    let case = "concurrent_increments_of_one_key_all_count";
    const WRITERS: u64 = 50;
    let store = Arc::new(store);
    let (token, _) = store.create(NewSession::new("heidi")).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let token = token.clone();
            tokio::spawn(async move {
                // Every writer starts from the same (soon stale) copy, as requests do.
                update_value(
                    &*store,
                    &token,
                    "count",
                    &SessionData::new(),
                    |n: Option<u64>| n.unwrap_or(0) + 1,
                )
                .await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for writer in writers {
        let (count, _) = writer.await.expect(case).expect(case);
        seen.push(count);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=WRITERS).collect::<Vec<_>>(),
        "{case}: each saw its own"
    );
    let data = store
        .load(&token)
        .await
        .unwrap()
        .expect("live")
        .data()
        .clone();
    assert_eq!(data.get::<u64>("count").unwrap(), Some(WRITERS), "{case}");
}

/// Rotation issues a new token for the same session; the old token is dead at once.
async fn rotate_kills_the_old_token_and_keeps_the_session(store: impl SessionStore) {
    let mut data = SessionData::new();
    data.insert("k", "v").unwrap();
    let (old, before) = store
        .create(NewSession::new("dave").with_roles(["USER"]).with_data(data))
        .await
        .unwrap();
    let new = store.rotate(&old).await.expect("rotate");
    assert_ne!(new, old);
    assert!(
        store.load(&old).await.unwrap().is_none(),
        "old token still works"
    );
    let after = store.load(&new).await.unwrap().expect("new token works");
    assert_eq!(after.user_id(), "dave");
    assert_eq!(after.roles(), before.roles());
    assert_eq!(after.data(), before.data());
    assert_eq!(after.created_at(), before.created_at());
    assert_eq!(after.expires_at(), before.expires_at());
    let listed = store.list_user_sessions("dave").await.unwrap();
    assert_eq!(listed.len(), 1, "rotation must not leave two index entries");
    assert_eq!(listed[0].handle, after.handle());
    assert!(matches!(store.rotate(&old).await, Err(Error::NotFound)));
}

/// `create` sets the auth time to now; `reauthenticate` issues a new token (the old one dead
/// at once) and sets the auth time to now again.
async fn reauthenticate_rotates_and_refreshes_auth_time(store: impl SessionStore) {
    let name = "reauthenticate_rotates_and_refreshes_auth_time";
    let clock = store.config().clock().clone();
    // Times are kept to the millisecond.
    let before_create = clock.now() - Duration::from_millis(1);
    let (old, created) = store.create(NewSession::new("rita")).await.unwrap();
    assert!(
        created.auth_time() >= before_create,
        "{name}: create sets auth time"
    );
    assert_eq!(created.auth_time(), created.created_at(), "{name}");
    let loaded = store.load(&old).await.unwrap().expect("live");
    assert_eq!(
        loaded.auth_time(),
        created.auth_time(),
        "{name}: auth time stored"
    );
    pass(&clock, Duration::from_millis(30)).await;
    let (new, session) = store
        .reauthenticate(&old, "password")
        .await
        .expect("reauthenticate");
    assert_ne!(new, old, "{name}: a new token");
    assert!(
        session.auth_time() >= created.auth_time() + Duration::from_millis(30),
        "{name}: auth time refreshed"
    );
    assert!(
        store.load(&old).await.unwrap().is_none(),
        "{name}: old token still works"
    );
    let after = store.load(&new).await.unwrap().expect("new token works");
    assert_eq!(after.auth_time(), session.auth_time(), "{name}");
    assert_eq!(after.handle(), session.handle(), "{name}");
    assert!(
        matches!(
            store.reauthenticate(&old, "password").await,
            Err(Error::NotFound)
        ),
        "{name}: the old token cannot re-authenticate"
    );
    // A re-authentication names its method; a session made without one gets it, the block of
    // device details it had none of included.
    assert_eq!(after.auth_method(), "password", "{name}");
    for unusable in ["", "pass key", "x".repeat(33).as_str()] {
        assert!(
            matches!(
                store.reauthenticate(&new, unusable).await,
                Err(Error::InvalidInput(_))
            ),
            "{name}: method {unusable:?}"
        );
    }
    let (dead, _) = store.create(NewSession::new("rita")).await.unwrap();
    store.delete(&dead).await.unwrap();
    assert!(matches!(
        store.reauthenticate(&dead, "password").await,
        Err(Error::NotFound)
    ));
}

/// Re-authentication keeps the user, roles, permissions, label, data, created time and
/// deadline, and the session stays indexed once (under its new handle).
async fn reauthenticate_keeps_every_field_and_the_index(store: impl SessionStore) {
    let name = "reauthenticate_keeps_every_field_and_the_index";
    let mut data = SessionData::new();
    data.insert("cart", &[1, 2, 3]).unwrap();
    let (old, before) = store
        .create(
            NewSession::new("sam")
                .with_roles(["USER", "ADMIN"])
                .with_permissions(["p"])
                .with_user_agent("Firefox/1")
                .with_client_ip("192.0.2.1".parse().unwrap())
                .with_method("password")
                .with_remember(true)
                .with_data(data.clone()),
        )
        .await
        .unwrap();
    store
        .set_user_authz("sam", &["USER".to_owned()], &[])
        .await
        .unwrap();
    assert_eq!(before.auth_method(), "password", "{name}");
    let (new, _) = store.reauthenticate(&old, "passkey").await.unwrap();
    let after = store.load(&new).await.unwrap().expect("live");
    assert_eq!(
        after.auth_method(),
        "passkey",
        "{name}: the proof's method is kept"
    );
    assert_eq!(after.user_id(), "sam", "{name}");
    assert_eq!(after.roles(), ["USER"], "{name}: the role change is kept");
    assert!(after.permissions().is_empty(), "{name}");
    assert_eq!(after.user_agent(), Some("Firefox/1"), "{name}");
    assert_eq!(after.data(), &data, "{name}");
    assert_eq!(after.created_at(), before.created_at(), "{name}");
    assert_eq!(after.expires_at(), before.expires_at(), "{name}");
    let listed = store.list_user_sessions("sam").await.unwrap();
    assert_eq!(listed.len(), 1, "{name}: one index entry");
    assert_eq!(listed[0].handle, after.handle(), "{name}");
    let info = &listed[0];
    assert_eq!(info.user_agent.as_deref(), Some("Firefox/1"), "{name}");
    assert_eq!(info.network.as_deref(), Some("192.0.2.0/24"), "{name}");
    assert_eq!(info.method.as_deref(), Some("passkey"), "{name}");
    assert!(info.remembered, "{name}");
}

/// `delete_other_user_sessions` ends every session of the user but the one kept, and no
/// other user's.
async fn other_sessions_of_a_user_are_deleted_and_this_one_kept(store: impl SessionStore) {
    let name = "other_sessions_of_a_user_are_deleted_and_this_one_kept";
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(store.create(NewSession::new("tina")).await.unwrap().0);
    }
    let (other_user, _) = store.create(NewSession::new("uma")).await.unwrap();
    let keep = tokens[1].clone();
    assert_eq!(
        store
            .delete_other_user_sessions("tina", &keep, EndReason::Revoked)
            .await
            .unwrap(),
        2,
        "{name}"
    );
    assert!(store.load(&keep).await.unwrap().is_some(), "{name}: kept");
    for t in [&tokens[0], &tokens[2]] {
        assert!(store.load(t).await.unwrap().is_none(), "{name}: not ended");
    }
    let listed = store.list_user_sessions("tina").await.unwrap();
    assert_eq!(listed.len(), 1, "{name}");
    assert!(store.load(&other_user).await.unwrap().is_some(), "{name}");
    assert_eq!(
        store
            .delete_other_user_sessions("tina", &keep, EndReason::Revoked)
            .await
            .unwrap(),
        0,
        "{name}"
    );
    // A token that is not one of the user's keeps nothing of theirs.
    assert_eq!(
        store
            .delete_other_user_sessions("tina", &other_user, EndReason::Revoked)
            .await
            .unwrap(),
        1,
        "{name}"
    );
    assert!(store.load(&other_user).await.unwrap().is_some(), "{name}");
}

/// What a login says of its device is kept, loaded and listed: the `User-Agent` (cut to 256
/// characters) with the browser and system read from it, the network (never the whole
/// address), the method, whether it is remembered. A login that says nothing lists nothing.
/// An impersonation session ([`NewSession::impersonated_by`]) keeps who impersonates through
/// loads, re-authentication and listing, and ends at its own absolute limit; one cannot be
/// remembered or anonymous.
async fn an_impersonation_session_is_marked_and_time_boxed(store: impl SessionStore) {
    let name = "an_impersonation_session_is_marked_and_time_boxed";
    let new = NewSession::new("tom")
        .with_roles(["USER"])
        .with_user_agent("Firefox/1")
        .impersonated_by("root");
    let (token, created) = store.create(new).await.expect("create");
    assert_eq!(created.impersonated_by(), Some("root"), "{name}");
    let lifetime = created.expires_at().duration_since(created.created_at());
    assert_eq!(
        lifetime.ok(),
        Some(Duration::from_secs(60)),
        "{name}: its own limit"
    );
    let loaded = store.load(&token).await.unwrap().expect("live");
    assert_eq!(loaded.impersonated_by(), Some("root"), "{name}");
    let (moved, _) = store.reauthenticate(&token, "password").await.unwrap();
    let loaded = store.load(&moved).await.unwrap().expect("live");
    assert_eq!(
        loaded.impersonated_by(),
        Some("root"),
        "{name}: kept by a rotation"
    );
    assert_eq!(loaded.user_agent(), Some("Firefox/1"), "{name}");
    let listed = store.list_user_sessions("tom").await.unwrap();
    assert_eq!(listed[0].impersonated_by.as_deref(), Some("root"), "{name}");
    let (own, _) = store.create(NewSession::new("tom")).await.unwrap();
    assert_eq!(
        store.load(&own).await.unwrap().unwrap().impersonated_by(),
        None
    );
    for refused in [
        NewSession::new("tom")
            .impersonated_by("root")
            .with_remember(true),
        NewSession::anonymous().impersonated_by("root"),
        NewSession::new("tom").impersonated_by(""),
    ] {
        let outcome = store.create(refused).await;
        // An empty impersonator is no impersonation: a plain session.
        if let Ok((_, s)) = &outcome {
            assert_eq!(s.impersonated_by(), None, "{name}");
            continue;
        }
        assert!(matches!(outcome, Err(Error::InvalidInput(_))), "{name}");
    }
    pass(store.config().clock(), Duration::from_secs(61)).await;
    if store.config().clock().as_manual().is_some() {
        assert!(
            store.load(&moved).await.unwrap().is_none(),
            "{name}: past its limit"
        );
        assert!(
            store.load(&own).await.unwrap().is_some(),
            "{name}: the own session lives"
        );
    }
}

async fn device_details_are_kept_and_listed(store: impl SessionStore) {
    let name = "device_details_are_kept_and_listed";
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let long = format!("{firefox} é{}", "x".repeat(400));
    let (t1, created) = store
        .create(
            NewSession::new("vera")
                .with_user_agent(long.clone())
                .with_client_ip("2001:db8:7:1::9".parse().unwrap())
                .with_method("passkey")
                .with_remember(true),
        )
        .await
        .unwrap();
    let expected: String = long.chars().take(crate::MAX_LABEL_CHARS).collect();
    assert_eq!(created.user_agent(), Some(expected.as_str()), "{name}");
    let loaded = store.load(&t1).await.unwrap().expect("live");
    assert_eq!(loaded.user_agent(), Some(expected.as_str()), "{name}");
    let (_, plain) = store.create(NewSession::new("vera")).await.unwrap();
    assert_eq!(plain.user_agent(), None, "{name}");
    let listed = store.list_user_sessions("vera").await.unwrap();
    assert_eq!(listed.len(), 2, "{name}");
    let info_of = |handle| {
        listed
            .iter()
            .find(|s| s.handle == handle)
            .expect("listed")
            .clone()
    };
    let info = info_of(created.handle());
    assert_eq!(
        info.user_agent.as_deref(),
        Some(expected.as_str()),
        "{name}"
    );
    assert_eq!(info.browser.as_deref(), Some("Firefox"), "{name}");
    assert_eq!(info.os.as_deref(), Some("Linux"), "{name}");
    assert_eq!(info.network.as_deref(), Some("2001:db8:7::/48"), "{name}");
    assert_eq!(info.method.as_deref(), Some("passkey"), "{name}");
    assert!(info.remembered && !info.current, "{name}");
    let info = info_of(plain.handle());
    assert_eq!(
        (
            info.user_agent,
            info.browser,
            info.os,
            info.network,
            info.method
        ),
        (None, None, None, None, None),
        "{name}"
    );
    assert!(!info.remembered, "{name}");
    // A method is a short name, checked before anything is stored.
    for bad in ["pass word", "x".repeat(crate::MAX_METHOD_LEN + 1).as_str()] {
        let refused = store.create(NewSession::new("vera").with_method(bad)).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "{name}: {bad:?}"
        );
    }
    assert_eq!(
        store.list_user_sessions("vera").await.unwrap().len(),
        2,
        "{name}"
    );
}

/// [`SessionStore::bind_device`] (DBSC) binds a live session once per read: a second call with
/// the same (now stale) read gets `false`, and nothing else of the session changes; the
/// binding stays through a re-authentication and is listed; an ended or unknown session is
/// not bound.
async fn a_device_binding_is_a_compare_and_set_that_keeps_the_rest(store: impl SessionStore) {
    use crate::binding::DeviceBinding;
    let name = "a_device_binding_is_a_compare_and_set_that_keeps_the_rest";
    let mut data = SessionData::new();
    data.insert("cart", &3).unwrap();
    let (token, _) = store
        .create(
            NewSession::new("bea")
                .with_roles(["USER"])
                .with_data(data.clone())
                .with_user_agent("Mozilla/5.0 (X11; Linux x86_64)")
                .with_method("password"),
        )
        .await
        .unwrap();
    let now = store.config().clock().now_ms();
    let binding = |byte: u8| {
        DeviceBinding::register(vec![byte; 65], now, 600_000)
            .unwrap()
            .binding
    };
    let (first, second) = (binding(1), binding(2));
    let unbound = store.load(&token).await.unwrap().expect("live");
    assert!(!unbound.is_device_bound(), "{name}");
    assert!(
        store.bind_device(&token, &unbound, &first).await.unwrap(),
        "{name}"
    );
    assert!(
        !store.bind_device(&token, &unbound, &second).await.unwrap(),
        "{name}: a stale read binds nothing"
    );
    let bound = store.load(&token).await.unwrap().expect("live");
    assert_eq!(bound.record.device.binding.as_ref(), Some(&first), "{name}");
    assert_eq!(
        (
            bound.user_id(),
            bound.roles(),
            bound.data(),
            bound.auth_method()
        ),
        ("bea", &["USER".to_owned()][..], &data, "password"),
        "{name}"
    );
    assert_eq!(bound.user_agent(), unbound.user_agent(), "{name}");
    assert_eq!(bound.expires_at(), unbound.expires_at(), "{name}");
    assert!(
        store.bind_device(&token, &bound, &second).await.unwrap(),
        "{name}"
    );
    let (token, proved) = store.reauthenticate(&token, "passkey").await.unwrap();
    assert_eq!(
        proved.record.device.binding.as_ref(),
        Some(&second),
        "{name}"
    );
    let listed = store.list_user_sessions("bea").await.unwrap();
    assert!(listed.len() == 1 && listed[0].bound, "{name}: {listed:?}");
    let reloaded = store.load(&token).await.unwrap().expect("live");
    store.delete(&token).await.unwrap();
    assert!(
        !store.bind_device(&token, &reloaded, &first).await.unwrap(),
        "{name}: an ended session"
    );
    let unknown = Token::generate(SystemTime::now() + Duration::from_secs(60)).unwrap();
    assert!(
        !store
            .bind_device(&unknown, &reloaded, &first)
            .await
            .unwrap(),
        "{name}: an unknown token"
    );
}

/// A user's sessions are listed the most recently used first (the newest first among those
/// used at the same moment), each with a handle that is not its token.
async fn user_sessions_are_listed_most_recently_used_first_with_handles(store: impl SessionStore) {
    let name = "user_sessions_are_listed_most_recently_used_first_with_handles";
    let clock = store.config().clock().clone();
    // Both the store's clock and real time pass: a store that reads last use off a timer of
    // its own (Redis key TTLs) sees the order too.
    let wait = || async {
        pass(&clock, Duration::from_millis(5)).await;
        if clock.as_manual().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(store.create(NewSession::new("erin")).await.unwrap());
        wait().await;
    }
    store.create(NewSession::new("frank")).await.unwrap();
    let listed = store.list_user_sessions("erin").await.unwrap();
    let handles: Vec<_> = listed.iter().map(|i| i.handle.clone()).collect();
    let newest_first: Vec<_> = made.iter().rev().map(|(_, s)| s.handle()).collect();
    assert_eq!(
        handles, newest_first,
        "{name}: unused, the newest first; only erin's"
    );
    for (token, _) in &made {
        for info in &listed {
            assert_ne!(info.handle.as_str(), token.as_cookie_value());
            assert!(!token.as_cookie_value().contains(info.handle.as_str()));
        }
    }
    // Using the oldest moves it to the top.
    assert!(store.load(&made[0].0).await.unwrap().is_some());
    let listed = store.list_user_sessions("erin").await.unwrap();
    assert_eq!(
        listed[0].handle,
        made[0].1.handle(),
        "{name}: the one just used first"
    );
    assert!(store.list_user_sessions("nobody").await.unwrap().is_empty());
}

/// A remembered login keeps its own limits: its deadline is the remembered absolute timeout
/// from login, and used within its own idle timeout it outlives an ordinary session's; so does
/// its rotated token. Runs on the idle-expiry clock (see the module docs).
async fn remembered_sessions_keep_their_own_limits(store: impl SessionStore) {
    let name = "remembered_sessions_keep_their_own_limits";
    let config = store.config().clone();
    let clock = config.clock().clone();
    let lifetime = |s: &crate::Session| {
        let ms = s
            .expires_at()
            .duration_since(s.created_at())
            .unwrap()
            .as_millis();
        u64::try_from(ms).unwrap()
    };
    let (plain, p) = store.create(NewSession::new("remy")).await.unwrap();
    let (kept, r) = store
        .create(NewSession::new("remy").with_remember(true))
        .await
        .unwrap();
    assert_eq!(
        lifetime(&p),
        config.absolute_ms(false),
        "{name}: ordinary deadline"
    );
    assert_eq!(
        lifetime(&r),
        config.absolute_ms(true),
        "{name}: remembered deadline"
    );
    let listed = store.list_user_sessions("remy").await.unwrap();
    let remembered = |h| listed.iter().find(|i| i.handle == h).map(|i| i.remembered);
    assert_eq!(remembered(p.handle()), Some(false), "{name}");
    assert_eq!(remembered(r.handle()), Some(true), "{name}");
    let kept = store.rotate(&kept).await.unwrap();
    for round in 0..2 {
        pass(&clock, IDLE_CASE_TIMEOUT * 2).await;
        let live = store.load(&kept).await.unwrap();
        assert!(
            live.is_some_and(|s| s.expires_at() == r.expires_at()),
            "{name}: a remembered session (rotated) idled out after an ordinary idle timeout, round {round}"
        );
    }
    assert!(
        store.load(&plain).await.unwrap().is_none(),
        "{name}: an ordinary session outlived its idle timeout"
    );
}

/// A session can be ended by its handle, but only through its own user.
async fn sessions_are_deleted_by_handle_only_for_their_owner(store: impl SessionStore) {
    let (a1, s1) = store.create(NewSession::new("gina")).await.unwrap();
    let (a2, _) = store.create(NewSession::new("gina")).await.unwrap();
    let (h1, _) = store.create(NewSession::new("hank")).await.unwrap();
    let hank_handle = store.list_user_sessions("hank").await.unwrap()[0]
        .handle
        .clone();
    assert!(
        !store
            .delete_user_session("gina", &hank_handle)
            .await
            .unwrap(),
        "gina ended hank's session"
    );
    assert!(store.load(&h1).await.unwrap().is_some());
    assert!(!store
        .delete_user_session("gina", &SessionHandle::new("no-such-handle"))
        .await
        .unwrap());
    assert!(store
        .delete_user_session("gina", &s1.handle())
        .await
        .unwrap());
    assert!(store.load(&a1).await.unwrap().is_none());
    assert!(store.load(&a2).await.unwrap().is_some());
    assert_eq!(store.list_user_sessions("gina").await.unwrap().len(), 1);
}

/// Ending all of a user's sessions ends exactly those.
async fn all_sessions_of_a_user_are_deleted(store: impl SessionStore) {
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(store.create(NewSession::new("ivan")).await.unwrap().0);
    }
    let (other, _) = store.create(NewSession::new("judy")).await.unwrap();
    assert_eq!(
        store
            .delete_user_sessions("ivan", EndReason::Revoked)
            .await
            .unwrap(),
        3
    );
    for t in &tokens {
        assert!(store.load(t).await.unwrap().is_none());
    }
    assert!(store.list_user_sessions("ivan").await.unwrap().is_empty());
    assert!(store.load(&other).await.unwrap().is_some());
    assert_eq!(
        store
            .delete_user_sessions("ivan", EndReason::Revoked)
            .await
            .unwrap(),
        0
    );
}

/// Setting a user's roles changes every live session of theirs at once, and no other user's.
async fn role_removed_for_user_is_not_honoured_by_any_session(store: impl SessionStore) {
    let admin = || NewSession::new("kate").with_roles(["ADMIN", "USER"]);
    let (t1, _) = store.create(admin()).await.unwrap();
    let (t2, _) = store.create(admin()).await.unwrap();
    let mut data = SessionData::new();
    data.insert("kept", &true).unwrap();
    store.save_data(&t2, &data).await.unwrap();
    let (other, _) = store
        .create(NewSession::new("leo").with_roles(["ADMIN"]))
        .await
        .unwrap();
    let changed = store
        .set_user_authz("kate", &["USER".to_owned()], &["read".to_owned()])
        .await
        .unwrap();
    assert_eq!(changed, 2);
    for t in [&t1, &t2] {
        let s = store.load(t).await.unwrap().expect("still live");
        assert!(!s.has_role("ADMIN"), "removed role still honoured");
        assert_eq!(s.roles(), ["USER"]);
        assert_eq!(s.permissions(), ["read"]);
        assert_eq!(s.user_id(), "kate");
    }
    let s2 = store.load(&t2).await.unwrap().unwrap();
    assert_eq!(s2.data(), &data, "data kept");
    assert!(store.load(&other).await.unwrap().unwrap().has_role("ADMIN"));
    assert_eq!(store.set_user_authz("nobody", &[], &[]).await.unwrap(), 0);
}

/// A login read the user's roles (with `ADMIN`), then an admin removed `ADMIN`
/// (`set_user_authz` returned), then the login created its session with the roles it had read:
/// the session must carry the new roles, both as returned by `create` and as loaded.
async fn login_in_flight_during_a_role_change_gets_the_new_roles(store: impl SessionStore) {
    let read_by_login = NewSession::new("quinn").with_roles(["ADMIN", "USER"]);
    let (existing, _) = store
        .create(NewSession::new("quinn").with_roles(["ADMIN", "USER"]))
        .await
        .unwrap();
    store
        .set_user_authz("quinn", &["USER".to_owned()], &[])
        .await
        .unwrap();
    let (token, created) = store.create(read_by_login).await.unwrap();
    assert_eq!(
        created.roles(),
        ["USER"],
        "create handed back the removed role"
    );
    for t in [&token, &existing] {
        let loaded = store.load(t).await.unwrap().expect("live");
        assert_eq!(loaded.roles(), ["USER"], "a removed role is honoured again");
    }
    // Another user's logins are not affected.
    let (_, other) = store
        .create(NewSession::new("rita").with_roles(["ADMIN"]))
        .await
        .unwrap();
    assert_eq!(other.roles(), ["ADMIN"]);
}

/// Logins and role removals run at the same time, many times over (each round a new user,
/// either side first, by chance): once both are done, no session has the removed role.
async fn logins_racing_role_removals_never_keep_the_removed_role(store: impl SessionStore) {
    let store = &store;
    for round in 0..60 {
        let user = format!("racer-{round}");
        let (login_delay, change_delay) = {
            let mut rng = rand::rng();
            (rng.random_range(0..200u64), rng.random_range(0..200u64))
        };
        let login = async {
            jitter(login_delay).await;
            store
                .create(NewSession::new(user.as_str()).with_roles(["ADMIN", "USER"]))
                .await
                .unwrap()
                .0
        };
        let change = async {
            jitter(change_delay).await;
            store
                .set_user_authz(&user, &["USER".to_owned()], &[])
                .await
                .unwrap()
        };
        let (token, _) = tokio::join!(login, change);
        let session = store.load(&token).await.unwrap().expect("live");
        assert!(
            !session.has_role("ADMIN"),
            "round {round}: the login kept the removed role (login after {login_delay} us, \
             role change after {change_delay} us)"
        );
    }
}

/// Waits `micros` µs, yielding to the other side of the race meanwhile: a start offset about
/// as long as a round trip to a local Redis, so that either call may come first or both
/// overlap. Not a timer: tokio's timer counts whole milliseconds, so a "µs" sleep took 1–2 ms,
/// which made the two sides start together or one after the other, and the case wait.
async fn jitter(micros: u64) {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        tokio::task::yield_now().await;
    }
}

/// Beyond the per-user limit (2 here), a new session evicts the oldest.
async fn per_user_limit_evicts_the_oldest(store: impl SessionStore) {
    let clock = store.config().clock();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(store.create(NewSession::new("mike")).await.unwrap().0);
        pass(clock, Duration::from_millis(5)).await;
    }
    assert!(
        store.load(&tokens[0]).await.unwrap().is_none(),
        "oldest survived"
    );
    assert!(store.load(&tokens[1]).await.unwrap().is_some());
    assert!(store.load(&tokens[2]).await.unwrap().is_some());
    assert_eq!(store.list_user_sessions("mike").await.unwrap().len(), 2);
    // Other users are not affected.
    let (other, _) = store.create(NewSession::new("nina")).await.unwrap();
    assert!(store.load(&other).await.unwrap().is_some());
}

/// A session ended by its logout, a revocation (by handle, all of the user's), a password
/// change or the per-user limit leaves its [`EndReason`] for its own token (and only for it);
/// a token past its deadline is `Expired`; a live session, a made-up token and the old token of
/// a rotation have none. Ending an ended session again does not change why it ended.
async fn why_a_session_ended_is_told_to_its_own_token(store: impl SessionStore) {
    let login = |user: &'static str| {
        let store = &store;
        async move { store.create(NewSession::new(user)).await.unwrap().0 }
    };
    let reason = |token: Token| {
        let store = &store;
        async move { store.end_reason(&token).await.expect("end_reason") }
    };

    let out = login("olga").await;
    assert!(store.delete(&out).await.unwrap());
    assert_eq!(reason(out.clone()).await, Some(EndReason::LoggedOut));
    assert!(
        store.load(&out).await.unwrap().is_none(),
        "an ended session loaded"
    );
    // Ending it again (a second logout, a revocation of the user) keeps the first reason.
    assert!(!store.delete(&out).await.unwrap());
    store
        .delete_user_sessions("olga", EndReason::Revoked)
        .await
        .unwrap();
    assert_eq!(reason(out).await, Some(EndReason::LoggedOut));

    let clock = store.config().clock();
    let first = login("pia").await;
    pass(clock, Duration::from_millis(5)).await;
    let second = login("pia").await;
    pass(clock, Duration::from_millis(5)).await;
    let third = login("pia").await; // the limit is 2: the oldest goes
    assert_eq!(reason(first).await, Some(EndReason::Evicted));
    assert_eq!(
        reason(second.clone()).await,
        None,
        "a live session has no end reason"
    );
    let handle = store.load(&second).await.unwrap().expect("live").handle();
    assert!(store.delete_user_session("pia", &handle).await.unwrap());
    assert_eq!(reason(second).await, Some(EndReason::Revoked));
    store
        .delete_user_sessions("pia", EndReason::Revoked)
        .await
        .unwrap();
    assert_eq!(reason(third).await, Some(EndReason::Revoked));

    let (kept, other) = (login("quinn").await, login("quinn").await);
    let ended = store
        .delete_other_user_sessions("quinn", &kept, EndReason::PasswordChanged)
        .await
        .unwrap();
    assert_eq!(ended, 1);
    assert_eq!(reason(other).await, Some(EndReason::PasswordChanged));
    assert_eq!(reason(kept.clone()).await, None);

    // Nothing is known of a token that never named a session, nor of a rotation's old token.
    let made_up = Token::issue(kept.deadline_ms(), false).unwrap();
    assert_eq!(reason(made_up).await, None);
    let rotated = store.rotate(&kept).await.unwrap();
    assert_eq!(reason(kept).await, None);

    let (anonymous, _) = store.create(NewSession::anonymous()).await.unwrap();
    assert!(store.delete(&anonymous).await.unwrap());
    assert_eq!(reason(anonymous).await, Some(EndReason::LoggedOut));

    // Past its deadline every token is expired, whatever became of its session.
    let absolute = Duration::from_millis(store.config().absolute_ms(false));
    if store.config().clock().as_manual().is_some() {
        pass(store.config().clock(), absolute + Duration::from_secs(1)).await;
        assert_eq!(reason(rotated).await, Some(EndReason::Expired));
    }
}

/// An anonymous session (no user) keeps data like any session, per key and under concurrent
/// increments, rotates and ends; it has no roles (one with roles is refused), appears in no
/// user's list and does not count against a user's limit.
async fn anonymous_sessions_keep_data_and_are_no_logins(store: impl SessionStore) {
    let mut data = SessionData::new();
    data.insert("cart", &["apple"]).unwrap();
    let (token, session) = store
        .create(NewSession::anonymous().with_data(data.clone()))
        .await
        .unwrap();
    assert!(session.is_anonymous());
    assert_eq!(session.user_id(), "");
    assert!(session.roles().is_empty() && session.permissions().is_empty());
    let loaded = store
        .load(&token)
        .await
        .unwrap()
        .expect("anonymous session");
    assert!(loaded.is_anonymous(), "loaded as a login");
    assert_eq!(loaded.data(), &data);

    let mut changes = DataChanges::new();
    changes.set("flash", "hello").unwrap();
    let merged = store.update_data(&token, &changes).await.unwrap();
    assert_eq!(
        merged.get::<Vec<String>>("cart").unwrap().map(|c| c.len()),
        Some(1)
    );
    assert_eq!(
        merged.get::<String>("flash").unwrap().as_deref(),
        Some("hello")
    );

    let store = Arc::new(store);
    // Spawned all before any is awaited: they run at once.
    let writers: Vec<_> = (0..20)
        .map(|_| {
            let (store, token) = (Arc::clone(&store), token.clone());
            tokio::spawn(async move {
                update_value(
                    store.as_ref(),
                    &token,
                    "count",
                    &SessionData::new(),
                    |n: Option<u64>| n.unwrap_or(0) + 1,
                )
                .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task").expect("increment");
    }
    let counted = store
        .load(&token)
        .await
        .unwrap()
        .expect("anonymous session");
    assert_eq!(counted.data().get::<u64>("count").unwrap(), Some(20));

    // Anonymous sessions share no user and no limit (1 here): a second one ends nothing.
    let (second, _) = store.create(NewSession::anonymous()).await.unwrap();
    assert!(store.load(&second).await.unwrap().is_some());
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "one anonymous session evicted another"
    );

    // A user's sessions and limit know nothing of them.
    let (login, _) = store.create(NewSession::new("quinn")).await.unwrap();
    let listed = store.list_user_sessions("quinn").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(store.load(&login).await.unwrap().is_some());
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "evicted by a login"
    );
    assert_eq!(
        store
            .delete_user_sessions("quinn", EndReason::Revoked)
            .await
            .unwrap(),
        1
    );
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "ended with a user"
    );
    // The empty user id names no user (InvalidInput or nothing): never the anonymous sessions.
    assert!(
        !matches!(store.delete_user_sessions("", EndReason::Revoked).await, Ok(n) if n > 0),
        "delete_user_sessions(\"\") ended anonymous sessions"
    );
    assert!(!matches!(store.list_user_sessions("").await, Ok(l) if !l.is_empty()));
    assert!(store.load(&token).await.unwrap().is_some());

    let rotated = store.rotate(&token).await.unwrap();
    assert!(
        store.load(&token).await.unwrap().is_none(),
        "old token lives"
    );
    let moved = store
        .load(&rotated)
        .await
        .unwrap()
        .expect("rotated session");
    assert!(moved.is_anonymous());
    assert_eq!(moved.data().get::<u64>("count").unwrap(), Some(20));
    assert!(store.delete(&rotated).await.unwrap());
    assert!(store.load(&rotated).await.unwrap().is_none());

    assert!(matches!(
        store
            .create(NewSession::anonymous().with_roles(["ADMIN"]))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store
            .create(NewSession::anonymous().with_permissions(["orders:read"]))
            .await,
        Err(Error::InvalidInput(_))
    ));
}

/// Unusable user ids and oversized data are refused with `InvalidInput`.
async fn invalid_input_is_refused(store: impl SessionStore) {
    assert!(matches!(
        store.create(NewSession::new("")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.create(NewSession::new("x".repeat(256))).await,
        Err(Error::InvalidInput(_))
    ));
    let (token, _) = store.create(NewSession::new("olga")).await.unwrap();
    let mut big = SessionData::new();
    big.insert("blob", &"x".repeat(crate::record::MAX_DATA_LEN))
        .unwrap();
    assert!(matches!(
        store.save_data(&token, &big).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(
        store.load(&token).await.unwrap().is_some(),
        "refused save lost the session"
    );
}

/// With a tiny touch interval, a later load moves "last seen" forward.
async fn last_seen_advances_after_the_touch_interval(store: impl SessionStore) {
    let (token, created) = store.create(NewSession::new("paul")).await.unwrap();
    assert_eq!(created.last_seen_at(), created.created_at());
    pass(store.config().clock(), Duration::from_millis(30)).await;
    store.load(&token).await.unwrap().expect("live");
    let later = store.load(&token).await.unwrap().expect("live");
    assert!(
        later.last_seen_at() > created.created_at(),
        "last seen did not move"
    );
    let listed = store.list_user_sessions("paul").await.unwrap();
    // A store may keep "last seen" its own way (Redis: as the key's expiry), so the list may
    // differ from what the load said by the time a round trip takes; not by seconds.
    let listed_at = listed[0].last_seen_at;
    let gap = listed_at
        .duration_since(later.last_seen_at())
        .unwrap_or_else(|e| e.duration());
    assert!(
        gap < Duration::from_secs(1),
        "listed last seen {listed_at:?}, the load said {:?}",
        later.last_seen_at()
    );
    assert!(
        listed_at > created.created_at(),
        "the list did not see the use"
    );
}

/// Idle timeout ([`run`]: 50 ms, a limit of 2 sessions per user): a session loaded every 0.14
/// of it outlives it (each load slides it); one unused for 1.12 of it has ended. The ended
/// session is not returned, leaves its user's index and does not count against the limit: a
/// new login evicts no live session for it.
///
/// On the system clock a load that must find the session live is checked only if it came
/// within the idle timeout of the previous use (measured); on a machine too busy for that the
/// case tries again, three times at most.
async fn idle_timeout_slides_and_ends_an_unused_session(store: impl SessionStore) {
    let name = "idle_timeout_slides_and_ends_an_unused_session";
    for attempt in 1..=3 {
        match idle_expiry_attempt(&store, &format!("quinn-{attempt}")).await {
            Ok(()) => return,
            Err(Late(late)) => eprintln!("{name}: attempt {attempt} came {late:?} late"),
        }
    }
    panic!("{name}: the machine was too busy to check idle expiry in real time, three times");
}

/// A check on the system clock that came too late to prove anything, by this much.
struct Late(Duration);

/// On the system clock: `Err` when `limit` has passed since `since` (a check that had to come
/// before then proves nothing). On a manual clock the checks are exact: never late.
fn in_time(clock: &Clock, since: Instant, limit: Duration) -> Result<(), Late> {
    match since.elapsed().checked_sub(limit) {
        Some(late) if clock.as_manual().is_none() => Err(Late(late)),
        _ => Ok(()),
    }
}

async fn idle_expiry_attempt(store: &impl SessionStore, user: &str) -> Result<(), Late> {
    let name = "idle_timeout_slides_and_ends_an_unused_session";
    let clock = store.config().clock().clone();
    let idle = Duration::from_millis(store.config().idle_ms(false));
    // Eight steps of 0.14 of the idle timeout: the one unused ends 0.12 of it before the
    // checks, and each load of the used one has 0.86 of it to spare.
    let step = idle * 7 / 50;
    let mut last_use = Instant::now();
    let (used, _) = store.create(NewSession::new(user)).await.unwrap();
    let (unused, _) = store.create(NewSession::new(user)).await.unwrap();
    for _ in 0..8 {
        pass(&clock, step).await;
        let this_use = Instant::now();
        if store.load(&used).await.unwrap().is_none() {
            in_time(&clock, last_use, idle)?;
            panic!("{name}: a session used within its idle timeout ended");
        }
        last_use = this_use;
    }
    // The user's index holds `used`, the ended `unused`, and now a third: over the limit of
    // two only if the ended one is counted. `used` was last used, and the third created,
    // after `last_use`: both are live until an idle timeout after it.
    let (third, _) = store.create(NewSession::new(user)).await.unwrap();
    if store.load(&used).await.unwrap().is_none() {
        in_time(&clock, last_use, idle)?;
        panic!("{name}: a live session was evicted for an ended one");
    }
    let listed = store.list_user_sessions(user).await.unwrap();
    if listed.len() != 2 || store.load(&third).await.unwrap().is_none() {
        in_time(&clock, last_use, idle)?;
        panic!(
            "{name}: {} sessions listed, not the 2 live ones",
            listed.len()
        );
    }
    assert!(
        store.load(&unused).await.unwrap().is_none(),
        "{name}: a session unused for longer than its idle timeout is live"
    );
    Ok(())
}

/// Absolute timeout ([`run`]: 900 ms, idle 600 ms): a session used every sixth of it is live
/// until its deadline, and from the deadline on it is neither loaded nor listed.
async fn absolute_timeout_ends_an_active_session(store: impl SessionStore) {
    let name = "absolute_timeout_ends_an_active_session";
    let clock = store.config().clock().clone();
    let step = Duration::from_millis(store.config().absolute_ms(false)) / 6;
    let (token, _) = store.create(NewSession::new("rosa")).await.unwrap();
    for i in 1..6 {
        pass(&clock, step).await;
        assert!(
            store.load(&token).await.unwrap().is_some(),
            "{name}: ended {i}/6 of the way to its deadline"
        );
    }
    pass(&clock, step).await;
    assert!(
        store.load(&token).await.unwrap().is_none(),
        "{name}: activity extended the absolute deadline"
    );
    assert!(
        store.list_user_sessions("rosa").await.unwrap().is_empty(),
        "{name}: listed after its deadline"
    );
}

/// Hundreds of tasks create, load, change and delete sessions at once; each sees its own.
async fn concurrent_sessions_are_not_lost_or_mixed(store: impl SessionStore) {
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300u32 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let user = format!("user-{}", i % 50);
            let mut data = SessionData::new();
            data.insert("i", &i).unwrap();
            let (token, _) = store
                .create(NewSession::new(user.clone()).with_data(data))
                .await
                .expect("create");
            for _ in 0..3 {
                let s = store.load(&token).await.expect("load").expect("live");
                assert_eq!(s.user_id(), user, "sessions mixed up");
                assert_eq!(s.data().get::<u32>("i").unwrap(), Some(i), "data mixed up");
            }
            if i % 2 == 0 {
                assert!(store.delete(&token).await.expect("delete"));
                assert!(store.load(&token).await.unwrap().is_none());
                None
            } else {
                Some((user, token))
            }
        });
    }
    let mut kept = Vec::new();
    while let Some(res) = tasks.join_next().await {
        if let Some(k) = res.expect("task panicked") {
            kept.push(k);
        }
    }
    assert_eq!(kept.len(), 150);
    for (user, token) in &kept {
        let s = store.load(token).await.unwrap().expect("kept session lost");
        assert_eq!(s.user_id(), user);
    }
    let mut listed = 0;
    for u in 0..50 {
        listed += store
            .list_user_sessions(&format!("user-{u}"))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(listed, 150, "index does not match the live sessions");
}

/// Runs the [`LoginThrottle`] cases against stores made by `make`, on manual clocks (the
/// throttle-window case on the system clock for a store that keeps the window by a timer of
/// its own; see the module docs).
///
/// # Panics
/// On the first case that fails, naming it.
#[cfg(feature = "throttle")]
pub async fn run_throttle<S, F, Fut>(make: F)
where
    S: LoginThrottle,
    F: Fn(SessionConfig) -> Fut,
    Fut: Future<Output = S>,
{
    let config_on = |clock: Clock| {
        SessionConfig::builder()
            .key_prefix(unique_prefix())
            .clock(clock)
            .build()
            .expect("valid test configuration")
    };
    let window_clock = throttle_window_clock(&make).await;
    let config = || config_on(manual_clock().into());
    throttle_locks_after_max_failures_even_for_the_right_password(make(config()).await).await;
    throttle_window_ends_and_success_clears_the_count(
        make(config_on(window_clock.clone())).await,
        &window_clock,
    )
    .await;
    throttle_counts_parallel_attempts_before_the_password_is_checked(make(config()).await).await;
    parallel_attempts_of_the_rightful_user_wait_a_moment_not_a_lockout(make(config()).await).await;
    address_counting_stops_password_spraying_across_usernames(make(config()).await).await;
}

/// Password spraying: one guess at each of many usernames from one client address never
/// reaches a username's limit, but reaches the address's; other addresses and the usernames
/// themselves are unaffected; a successful login released from the count does not count, and
/// does not wipe the failures either.
#[cfg(feature = "throttle")]
async fn address_counting_stops_password_spraying_across_usernames(store: impl LoginThrottle) {
    let name = "address_counting_stops_password_spraying_across_usernames";
    let per_user = ThrottleConfig::new(3, Duration::from_secs(60));
    let per_address = ThrottleConfig::new(4, Duration::from_secs(60));
    let sprayer: std::net::IpAddr = "203.0.113.9".parse().unwrap();
    let neighbour: std::net::IpAddr = "2001:db8:0:1::5".parse().unwrap();
    // A success from the address, released: it neither counts nor clears.
    assert_eq!(
        store.begin_login_from(sprayer, &per_address).await.unwrap(),
        None
    );
    store.release_attempt_from(sprayer).await.unwrap();
    for user in ["u1", "u2", "u3", "u4"] {
        assert_eq!(
            store.begin_login(user, &per_user).await.unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            store.begin_login_from(sprayer, &per_address).await.unwrap(),
            None,
            "{name}: {user}"
        );
        store.record_failure(user, &per_user).await.unwrap();
        store
            .record_failure_from(sprayer, &per_address)
            .await
            .unwrap();
    }
    assert!(
        store
            .begin_login_from(sprayer, &per_address)
            .await
            .unwrap()
            .is_some(),
        "{name}: the address is not locked after 4 failures"
    );
    assert_eq!(
        store.begin_login("u5", &per_user).await.unwrap(),
        None,
        "{name}: usernames have their own counts"
    );
    assert_eq!(
        store
            .begin_login_from(neighbour, &per_address)
            .await
            .unwrap(),
        None,
        "{name}: another address is unaffected"
    );
    // The same /64 is the same client.
    let same_64: std::net::IpAddr = "2001:db8:0:1:ffff::1".parse().unwrap();
    for _ in 0..3 {
        store.begin_login_from(same_64, &per_address).await.unwrap();
        store
            .record_failure_from(same_64, &per_address)
            .await
            .unwrap();
    }
    assert!(
        store
            .begin_login_from(neighbour, &per_address)
            .await
            .unwrap()
            .is_some(),
        "{name}: an IPv6 /64 counts as one client"
    );
}

/// Three failures (the limit) lock the username; other usernames are unaffected.
#[cfg(feature = "throttle")]
async fn throttle_locks_after_max_failures_even_for_the_right_password(store: impl LoginThrottle) {
    let limits = ThrottleConfig::new(3, Duration::from_secs(60));
    for i in 1..=3 {
        assert_eq!(store.begin_login("alice", &limits).await.unwrap(), None);
        let after = store.record_failure("alice", &limits).await.unwrap();
        assert_eq!(after.is_some(), i == 3, "failure {i}");
    }
    match store.begin_login("alice", &limits).await.unwrap() {
        Some(retry_after) => {
            assert!(
                retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60)
            );
        }
        None => panic!("not locked after the limit"),
    }
    assert_eq!(store.begin_login("bob", &limits).await.unwrap(), None);
}

/// Failures expire with the window (30 ms, the lock a whole window from the last failure);
/// a success forgets them. `clock` is the one the store was built with. On the system clock
/// the lock is checked only if it was made and checked within the window (measured); a machine
/// too busy for that makes the case try again, three times at most.
#[cfg(feature = "throttle")]
async fn throttle_window_ends_and_success_clears_the_count(
    store: impl LoginThrottle,
    clock: &Clock,
) {
    let name = "throttle_window_ends_and_success_clears_the_count";
    let short = ThrottleConfig::new(2, THROTTLE_CASE_WINDOW);
    let mut attempts = 1..=3;
    loop {
        let Some(attempt) = attempts.next() else {
            panic!(
                "{name}: the machine was too busy to check the window in real time, three times"
            );
        };
        let user = format!("carol-{attempt}");
        let first = Instant::now();
        for _ in 0..2 {
            store.begin_login(&user, &short).await.unwrap();
            store.record_failure(&user, &short).await.unwrap();
        }
        let locked = store.begin_login(&user, &short).await.unwrap().is_some();
        if !locked {
            match in_time(clock, first, THROTTLE_CASE_WINDOW) {
                Ok(()) => panic!("{name}: two failures within the window did not lock"),
                Err(Late(late)) => {
                    eprintln!("{name}: attempt {attempt} came {late:?} late");
                    continue;
                }
            }
        }
        // 5 ms past the window from the last failure, the lock is gone (Redis set its TTL before
        // the failure returned).
        pass(clock, THROTTLE_CASE_WINDOW + Duration::from_millis(5)).await;
        assert_eq!(
            store.begin_login(&user, &short).await.unwrap(),
            None,
            "{name}: the lock outlived its window"
        );
        break;
    }

    // One failure of two allowed, cleared: the next failure is the first again, so it does not
    // lock (without the clear it would be the second, and lock).
    let long = ThrottleConfig::new(2, Duration::from_secs(60));
    assert_eq!(store.begin_login("dave", &long).await.unwrap(), None);
    assert_eq!(store.record_failure("dave", &long).await.unwrap(), None);
    store.clear_failures("dave").await.unwrap();
    assert_eq!(
        store.begin_login("dave", &long).await.unwrap(),
        None,
        "count not cleared"
    );
    assert_eq!(
        store.record_failure("dave", &long).await.unwrap(),
        None,
        "count not cleared"
    );
}

/// Twenty attempts begun at once before any password check: only the limit (3) proceed.
#[cfg(feature = "throttle")]
async fn throttle_counts_parallel_attempts_before_the_password_is_checked(
    store: impl LoginThrottle,
) {
    let limits = ThrottleConfig::new(3, Duration::from_secs(60));
    // All twenty in flight together (polled concurrently, pipelined on a shared connection): a
    // check-then-count that is not atomic lets more than three through.
    let attempts = (0..20).map(|_| store.begin_login("erin", &limits));
    let outcomes = futures_util::future::join_all(attempts).await;
    let allowed = outcomes
        .into_iter()
        .map(|o| o.expect("begin_login"))
        .filter(Option::is_none)
        .count();
    assert_eq!(allowed, 3, "more guesses than the limit were let through");
}

/// The limit reached by attempts still being checked (no failure yet) asks one more attempt to
/// wait a moment (at most a second), not a whole window; a success among them clears the
/// count, and the next attempt goes through. Failures, not attempts, lock.
#[cfg(feature = "throttle")]
async fn parallel_attempts_of_the_rightful_user_wait_a_moment_not_a_lockout(
    store: impl LoginThrottle,
) {
    let limits = ThrottleConfig::new(3, Duration::from_secs(600));
    for _ in 0..3 {
        assert_eq!(
            store.begin_login("fay", &limits).await.expect("begin"),
            None
        );
    }
    // One of the three fails: still no lock (one failure of three allowed).
    assert_eq!(
        store.record_failure("fay", &limits).await.expect("failure"),
        None
    );
    match store.begin_login("fay", &limits).await.expect("begin") {
        Some(retry_after) => assert!(
            retry_after <= Duration::from_secs(1),
            "attempts in flight locked the user out for {retry_after:?}"
        ),
        None => panic!("a fourth attempt was checked while three were in flight"),
    }
    // A right password among those in flight: the count is cleared, the next one proceeds.
    store.clear_failures("fay").await.expect("clear");
    assert_eq!(
        store.begin_login("fay", &limits).await.expect("begin"),
        None
    );
}
