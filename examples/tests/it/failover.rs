//! A SIGKILLed Redis primary while server A serves a few dozen cached sessions under load
//! (`GET /me`, `GET /admin` for the admins), and server B logs a third of them out and demotes
//! the users of another third, half of the changes sent right after the kill (answered as soon
//! as the store answers again) and half once the failover is over: no request on A is answered
//! 200 for a changed session once the staleness bound has passed since B's answer, no answer is
//! other than 200, 503 or the change's own refusal, and no session that was live is lost. Once
//! behind Sentinel, once on a Cluster with a replica per primary (the primary killed is the one
//! owning the most sessions of each fate).

use crate::support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use demo::setup::KEY_PREFIX;
use redis_harness::cluster::NodeRole;
use redis_harness::{RedisCluster, RedisSentinelGroup};
use support::*;

/// The demo's staleness bound (the library default): how long after B's answer A may still
/// honour a changed session from its cache.
const STALENESS_BOUND: Duration = Duration::from_secs(1);

/// How long B's changes, and the final checks, retry a 503 before the test gives up.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// How long the load keeps running once the failover is over and B's changes are answered.
const TAIL: Duration = Duration::from_millis(1500);

/// Concurrent load loops on A.
const WORKERS: usize = 2;

/// What B does to a session during the failover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Nothing: it must be answered 200 all along (or 503 while the store is down).
    Kept,
    /// `POST /logout` on B: 401 on A within the staleness bound of B's answer.
    LoggedOut,
    /// Its user loses ADMIN on B: 403 on `GET /admin` on A within the bound, still live.
    Demoted,
}

struct Session {
    user: String,
    cookie: Cookie,
    fate: Fate,
}

impl Session {
    /// The route the load asks on A: `/admin` for a session whose user is demoted (that is
    /// where the demotion shows), `/me` otherwise.
    fn path(&self) -> &'static str {
        match self.fate {
            Fate::Demoted => "/admin",
            Fate::Kept | Fate::LoggedOut => "/me",
        }
    }

    /// The session's Redis key: `{prefix}:s:` + the first 16 bytes of the SHA-256 of the token.
    fn redis_key(&self) -> Vec<u8> {
        let token = session_core::Token::parse(&self.cookie.value).expect("a well-formed token");
        [
            format!("{KEY_PREFIX}:s:").as_bytes(),
            token.key().as_bytes().as_slice(),
        ]
        .concat()
    }
}

/// One request of the load on A, times from the start of the load.
#[derive(Debug)]
struct Hit {
    session: usize,
    started: Duration,
    ended: Duration,
    /// 0 for no HTTP answer.
    status: u16,
    /// The error code of a non-200 answer, or the transport error.
    code: String,
}

/// When B's change of a session was first sent and when B answered it (from the start of the
/// load).
#[derive(Debug, Clone, Copy)]
struct Change {
    sent: Duration,
    answered: Duration,
}

/// The non-admin users (each with kept and logged-out sessions, interleaved, so that a logout
/// must not touch the user's other sessions) and the admins to be demoted (all their sessions).
const PLAIN_USERS: &[(&str, &str)] = &[
    ALICE,
    ("fo-carol", "carol-password"),
    ("fo-erin", "erin-password"),
];
const DEMOTED_USERS: &[(&str, &str)] = &[
    ("fo-boss1", "boss1-password"),
    ("fo-boss2", "boss2-password"),
];
const SESSIONS_PER_PLAIN_USER: usize = 6;
const SESSIONS_PER_DEMOTED_USER: usize = 5;

/// Registers the users, promotes the ones to demote (through B, with `admin`), logs the
/// sessions in on A and uses each twice there (the second answer comes from A's cache).
async fn log_in(a: &Server, b: &Server, admin: &Cookie) -> Vec<Session> {
    let (ca, cb) = (a.client(), b.client());
    for &(user, password) in PLAIN_USERS.iter().chain(DEMOTED_USERS) {
        if user != ALICE.0 {
            cb.register(user, password).await.assert_status(201);
        }
    }
    for &(user, _) in DEMOTED_USERS {
        cb.put(
            &format!("/admin/users/{user}/roles"),
            Some(admin),
            json!({"roles": ["USER", "ADMIN"]}),
        )
        .await
        .assert_status(204);
    }
    let mut sessions = Vec::new();
    for i in 0..SESSIONS_PER_PLAIN_USER {
        for &(user, password) in PLAIN_USERS {
            let fate = if i % 2 == 0 {
                Fate::Kept
            } else {
                Fate::LoggedOut
            };
            sessions.push(Session {
                user: user.to_owned(),
                cookie: ca.login_ok(user, password).await,
                fate,
            });
        }
    }
    for _ in 0..SESSIONS_PER_DEMOTED_USER {
        for &(user, password) in DEMOTED_USERS {
            sessions.push(Session {
                user: user.to_owned(),
                cookie: ca.login_ok(user, password).await,
                fate: Fate::Demoted,
            });
        }
    }
    for s in &sessions {
        ca.get(s.path(), Some(&s.cookie)).await.assert_status(200);
        ca.get(s.path(), Some(&s.cookie)).await.assert_status(200);
    }
    sessions
}

/// The load on A: `WORKERS` loops, each over all the sessions from its own offset, until
/// `stop`; every request recorded.
fn start_load(
    a: &Server,
    sessions: &Arc<Vec<Session>>,
    t0: Instant,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Hit>>> {
    (0..WORKERS)
        .map(|w| {
            let (client, sessions, stop) = (a.fresh_client(), sessions.clone(), stop.clone());
            tokio::spawn(async move {
                let mut hits = Vec::new();
                let n = sessions.len();
                let mut i = w * n / WORKERS;
                while !stop.load(Ordering::Relaxed) {
                    let s = &sessions[i % n];
                    let started = t0.elapsed();
                    let res = client
                        .try_send(Method::GET, s.path(), Some(&s.cookie), None, &[])
                        .await;
                    let ended = t0.elapsed();
                    let (status, code) = match res {
                        Ok(res) => (res.status, res.code().to_owned()),
                        Err(e) => (0, e),
                    };
                    hits.push(Hit {
                        session: i % n,
                        started,
                        ended,
                        status,
                        code,
                    });
                    i += 1;
                }
                hits
            })
        })
        .collect()
}

/// A change B makes.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// `POST /logout` with session `i`'s cookie.
    Logout(usize),
    /// `PUT /admin/users/{user}/roles` `["USER"]` (all the user's sessions).
    Demote(&'static str),
}

/// Through B, each change in a task of its own, retried on 503 until the store answers (for
/// `RETRY_FOR` at most): half of them sent right after the kill (one every 40 ms: during the
/// outage, answered as soon as their key's primary answers), the other half once `failed_over`
/// says the failover is over (one every 40 ms, while A's cache refills from the new primary).
/// Returns, per session index, when its change was first sent and when B answered it.
async fn make_changes(
    cb: Client,
    admin: Cookie,
    sessions: Arc<Vec<Session>>,
    t0: Instant,
    failed_over: tokio::sync::watch::Receiver<bool>,
) -> BTreeMap<usize, Change> {
    let mut steps: Vec<Step> = (0..sessions.len())
        .filter(|&i| sessions[i].fate == Fate::LoggedOut)
        .map(Step::Logout)
        .collect();
    // One demotion in each half.
    for (n, &(user, _)) in DEMOTED_USERS.iter().enumerate() {
        steps.insert((2 * n + 1).min(steps.len()), Step::Demote(user));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (k, step) in steps.into_iter().enumerate() {
        let (cb, admin, sessions) = (cb.clone(), admin.clone(), sessions.clone());
        let mut failed_over = failed_over.clone();
        tasks.spawn(async move {
            if k % 2 == 1 {
                failed_over
                    .wait_for(|&done| done)
                    .await
                    .expect("the failover's end is announced");
            }
            tokio::time::sleep(Duration::from_millis(40) * (k / 2) as u32).await;
            (step, change(&cb, &admin, &sessions, t0, step).await)
        });
    }
    let mut changes = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (step, change) = done.expect("a change through B");
        match step {
            Step::Logout(i) => {
                changes.insert(i, change);
            }
            Step::Demote(user) => {
                for (i, s) in sessions.iter().enumerate() {
                    if s.user == user {
                        changes.insert(i, change);
                    }
                }
            }
        }
    }
    changes
}

/// Makes one change through B, retrying on 503.
async fn change(
    cb: &Client,
    admin: &Cookie,
    sessions: &[Session],
    t0: Instant,
    step: Step,
) -> Change {
    let sent = t0.elapsed();
    let deadline = Instant::now() + RETRY_FOR;
    let mut saw_503 = false;
    loop {
        let (res, done) = match step {
            Step::Logout(i) => {
                let res = cb.post_empty("/logout", Some(&sessions[i].cookie)).await;
                // A 401 after a 503: the attempt answered 503 did end the session.
                let done = res.status == 204 || (saw_503 && res.status == 401);
                (res, done)
            }
            Step::Demote(user) => {
                let res = cb
                    .put(
                        &format!("/admin/users/{user}/roles"),
                        Some(admin),
                        json!({"roles": ["USER"]}),
                    )
                    .await;
                let done = res.status == 204;
                (res, done)
            }
        };
        if done {
            return Change {
                sent,
                answered: t0.elapsed(),
            };
        }
        res.assert_error(503, "store_unavailable");
        saw_503 = true;
        assert!(
            Instant::now() < deadline,
            "{step:?}: B still answers 503 {RETRY_FOR:?} after the first try"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` on `c` until it answers something else than 503 (for `RETRY_FOR` at most).
async fn settled(c: &Client, path: &str, cookie: &Cookie) -> Resp {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        let res = c.get(path, Some(cookie)).await;
        if res.status != 503 || Instant::now() >= deadline {
            return res;
        }
        res.assert_error(503, "store_unavailable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Times of the run, from the start of the load.
struct Timeline {
    killed: Duration,
    failed_over: Duration,
}

/// Checks every recorded answer of the load against the sessions' fates and B's changes,
/// then each session once more on A; prints the summary line.
async fn check(
    on: &str,
    a: &Server,
    sessions: &[Session],
    changes: &BTreeMap<usize, Change>,
    hits: &[Hit],
    timeline: &Timeline,
) {
    let mut violations = Vec::new();
    let mut counts = BTreeMap::<u16, usize>::new();
    let mut ok_after_failover = 0;
    // The latest start of a request answered 200 after B answered the change, per session.
    let mut max_window: Option<Duration> = None;
    for hit in hits {
        *counts.entry(hit.status).or_default() += 1;
        let s = &sessions[hit.session];
        let change = changes.get(&hit.session);
        if hit.status == 200 && hit.started > timeline.failed_over {
            ok_after_failover += 1;
        }
        let what = format!(
            "session {} ({:?}, {}) GET {} started {:?} ended {:?} (kill {:?}, change {:?}): {} {}",
            hit.session,
            s.fate,
            s.user,
            s.path(),
            hit.started,
            hit.ended,
            timeline.killed,
            change,
            hit.status,
            hit.code
        );
        match (hit.status, s.fate) {
            (200, Fate::Kept) => {}
            (200, _) => {
                let change = change.expect("every changed session has its change recorded");
                if let Some(after) = hit.started.checked_sub(change.answered) {
                    max_window = max_window.max(Some(after));
                    if after > STALENESS_BOUND {
                        violations
                            .push(format!("200 {after:?} after B answered the change: {what}"));
                    }
                }
            }
            (503, _) if hit.code == "store_unavailable" => {}
            (401, Fate::LoggedOut) | (403, Fate::Demoted)
                if change.is_some_and(|c| hit.ended >= c.sent) => {}
            _ => violations.push(format!("unexpected answer: {what}")),
        }
    }

    // The end state on A: nothing lost, every change in force.
    let ca = a.client();
    for (i, s) in sessions.iter().enumerate() {
        let me = settled(&ca, "/me", &s.cookie).await;
        let admin = settled(&ca, "/admin", &s.cookie).await;
        let expected = match s.fate {
            Fate::Kept | Fate::Demoted if me.status != 200 => Some("GET /me 200 (still live)"),
            Fate::LoggedOut if me.status != 401 => Some("GET /me 401"),
            Fate::Demoted if admin.status != 403 => Some("GET /admin 403"),
            _ => None,
        };
        if let Some(expected) = expected {
            violations.push(format!(
                "at the end, session {i} ({:?}, {}): expected {expected}, got /me {} {:?}, \
                 /admin {} {:?}",
                s.fate, s.user, me.status, me.text, admin.status, admin.text
            ));
        }
    }

    let count = |status: u16| counts.get(&status).copied().unwrap_or(0);
    let answered: Vec<Duration> = changes.values().map(|c| c.answered).collect();
    let during = answered
        .iter()
        .filter(|&&t| t < timeline.failed_over)
        .count();
    let first = answered.iter().min().copied().unwrap_or_default();
    let last = answered.iter().max().copied().unwrap_or_default();
    println!(
        "{on}: {} requests on A over {} sessions: 200 x{}, 401 x{}, 403 x{}, 503 x{}, other x{}; \
         200 after the failover x{ok_after_failover}; kill at {:?}, failover seen at {:?}; B's \
         changes answered {:?}..{:?} after the kill ({during} of {} changed sessions before the \
         failover was seen); latest 200 after B's answer: {:?} \
         (bound {STALENESS_BOUND:?})",
        hits.len(),
        sessions.len(),
        count(200),
        count(401),
        count(403),
        count(503),
        hits.len() - count(200) - count(401) - count(403) - count(503),
        timeline.killed,
        timeline.failed_over,
        first.saturating_sub(timeline.killed),
        last.saturating_sub(timeline.killed),
        answered.len(),
        max_window,
    );
    assert!(
        violations.is_empty(),
        "{on}: {} violation(s), the first ones:\n{}",
        violations.len(),
        violations
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        ok_after_failover > 0,
        "{on}: no request of the load was answered 200 after the failover"
    );
}

/// One run: the sessions, then the load on A, the kill, B's changes and the failover, the tail.
struct Run {
    sessions: Arc<Vec<Session>>,
    admin: Cookie,
    t0: Instant,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<Hit>>>,
}

impl Run {
    /// Logs the sessions in (and warms them on A); the load starts with [`Run::start_load`].
    async fn log_in(a: &Server, b: &Server) -> Self {
        let admin = b.client().login_ok(ADMIN.0, ADMIN.1).await;
        let sessions = Arc::new(log_in(a, b, &admin).await);
        Self {
            sessions,
            admin,
            t0: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
        }
    }

    /// Starts the load on A and lets it run a moment before the kill.
    async fn start_load(&mut self, a: &Server) {
        self.t0 = Instant::now();
        self.workers = start_load(a, &self.sessions, self.t0, &self.stop);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Call right after the kill: B's changes start at once, in tasks of their own
    /// ([`make_changes`]), while `wait_for_failover` blocks this thread until the failover is
    /// over; then, once B's changes are all answered, the tail of the load and the checks.
    async fn after_kill(self, on: &str, a: &Server, b: &Server, wait_for_failover: impl FnOnce()) {
        let killed = self.t0.elapsed();
        let (announce, announced) = tokio::sync::watch::channel(false);
        let changes = tokio::spawn(make_changes(
            b.fresh_client(),
            self.admin.clone(),
            self.sessions.clone(),
            self.t0,
            announced,
        ));
        tokio::task::block_in_place(wait_for_failover);
        let failed_over = self.t0.elapsed();
        announce.send_replace(true);
        let changes = changes.await.expect("B's changes");
        tokio::time::sleep(TAIL).await;
        self.stop.store(true, Ordering::Relaxed);
        let mut hits = Vec::new();
        for worker in self.workers {
            hits.extend(worker.await.expect("a load loop"));
        }
        let timeline = Timeline {
            killed,
            failed_over,
        };
        check(on, a, &self.sessions, &changes, &hits, &timeline).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_a_killed_primary_loses_no_session_and_honours_no_change_late() {
    let mut group = RedisSentinelGroup::start("failover").expect("a local Sentinel group");
    let (a, b) = (
        ServerBuilder::sentinel(&group).start().await,
        ServerBuilder::sentinel(&group).start().await,
    );
    let mut run = Run::log_in(&a, &b).await;
    group
        .wait_for_replication(Duration::from_secs(10))
        .expect("the replica caught up");
    run.start_load(&a).await;
    let old = group.kill_primary().expect("kill the primary");
    run.after_kill("Sentinel", &a, &b, || {
        group
            .wait_for_failover(old, Duration::from_secs(30))
            .expect("a replica is promoted");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_killed_primary_loses_no_session_and_honours_no_change_late() {
    let mut cluster = RedisCluster::start(3, 1).expect("a local Redis Cluster with replicas");
    let (a, b) = (
        ServerBuilder::cluster(&cluster).start().await,
        ServerBuilder::cluster(&cluster).start().await,
    );
    let mut run = Run::log_in(&a, &b).await;
    let primaries: Vec<u16> = cluster
        .nodes()
        .into_iter()
        .filter(|n| n.role == NodeRole::Primary)
        .map(|n| n.port)
        .collect();
    for &port in &primaries {
        cluster
            .wait_for_replication(port, Duration::from_secs(10))
            .expect("the replicas caught up");
    }
    // The victim: the primary owning the most sessions (each fate counted).
    let mut owned = BTreeMap::<u16, [usize; 3]>::new();
    for s in run.sessions.iter() {
        let port = cluster
            .primary_for_key(&s.redis_key())
            .expect("the session's slot is served");
        owned.entry(port).or_default()[s.fate as usize] += 1;
    }
    let (&victim, held) = owned
        .iter()
        .max_by_key(|(_, held)| (held.iter().min().copied(), held.iter().sum::<usize>()))
        .expect("the sessions are on some primary");
    println!(
        "Cluster: sessions (kept, logged out, demoted) per primary {owned:?}; killing {victim} \
         ({held:?})"
    );
    assert!(
        primaries.contains(&victim),
        "{victim} is not among the primaries {primaries:?}"
    );
    run.start_load(&a).await;
    cluster.kill_node(victim).expect("kill the primary");
    run.after_kill("Cluster", &a, &b, || {
        cluster
            .wait_for_failover(victim, Duration::from_secs(30))
            .expect("its replica is promoted");
    })
    .await;
}
