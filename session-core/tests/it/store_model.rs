//! Model-based property test: `MemoryStore` (the model) and `RedisStore` run the same arbitrary
//! sequences of operations and must agree on every observable result, on one redis-server of
//! the test's own (the single-server engine) and on a Redis Cluster (the Cluster engine, whose
//! cross-slot steps are the riskiest code). The operations include per-key data updates with
//! expectations (`update_data.lua`), anonymous sessions and logins carrying a login epoch.
//! Tokens are matched by position: the n-th token either store handed out stands for the same
//! session in both. Both stores read one manual clock, moved on at each login, so no step waits.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use crate::common::unique_prefix;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use redis_harness::{RedisCluster, RedisServer};
use session_core::{
    Clock, DataChanges, EndReason, Error, MemoryStore, NewSession, RedisStore, RedisTarget,
    Session, SessionConfig, SessionData, SessionHandle, SessionStore, Token,
};

/// Few users and a small per-user limit, so sequences hit the same user's sessions, the
/// per-user operations and eviction often.
const USERS: [&str; 3] = ["ada", "bob", "cy"];
const NAMES: [&str; 3] = ["A", "B", "C"];
const MAX_PER_USER: usize = 3;
/// The data keys the per-key updates touch.
const KEYS: [&str; 3] = ["k0", "k1", "v"];

#[derive(Debug, Clone)]
enum Op {
    Create {
        user: usize,
        roles: Vec<usize>,
        data: Option<u8>,
        /// With the epoch this run last read for the user (if any).
        with_epoch: bool,
    },
    CreateAnonymous(Option<u8>),
    ReadEpoch(usize),
    /// Sets (`Some`) or removes (`None`) one key, expecting it to hold `expect` first (when
    /// given: `Some(None)` expects it absent).
    UpdateData {
        session: usize,
        key: usize,
        value: Option<u8>,
        expect: Option<Option<u8>>,
    },
    Load(usize),
    SaveData(usize, u8),
    Rotate(usize),
    Reauthenticate(usize),
    Delete(usize),
    List(usize),
    SetAuthz {
        user: usize,
        roles: Vec<usize>,
        permissions: Vec<usize>,
    },
    DeleteUserSession(usize, usize),
    DeleteUserSessions(usize),
    DeleteOthers(usize, usize),
}

fn names() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..NAMES.len(), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let pick = any::<usize>();
    prop_oneof![
        4 => (user.clone(), names(), proptest::option::of(any::<u8>()), any::<bool>())
            .prop_map(|(user, roles, data, with_epoch)| Op::Create { user, roles, data, with_epoch }),
        1 => proptest::option::of(any::<u8>()).prop_map(Op::CreateAnonymous),
        1 => user.clone().prop_map(Op::ReadEpoch),
        3 => (
            pick,
            0..KEYS.len(),
            proptest::option::of(0..4u8),
            proptest::option::of(proptest::option::of(0..4u8)),
        )
            .prop_map(|(session, key, value, expect)| Op::UpdateData { session, key, value, expect }),
        3 => pick.prop_map(Op::Load),
        1 => (pick, any::<u8>()).prop_map(|(i, v)| Op::SaveData(i, v)),
        1 => pick.prop_map(Op::Rotate),
        1 => pick.prop_map(Op::Reauthenticate),
        1 => pick.prop_map(Op::Delete),
        1 => user.clone().prop_map(Op::List),
        1 => (user.clone(), names(), names())
            .prop_map(|(user, roles, permissions)| Op::SetAuthz { user, roles, permissions }),
        1 => (user.clone(), pick).prop_map(|(u, i)| Op::DeleteUserSession(u, i)),
        1 => user.clone().prop_map(Op::DeleteUserSessions),
        1 => (user, pick).prop_map(|(u, i)| Op::DeleteOthers(u, i)),
    ]
}

/// What both stores must agree on: a result's shape, never tokens, handles or clocks.
#[derive(Debug, PartialEq)]
enum Seen {
    Session(Option<View>),
    Done,
    Bool(bool),
    Count(usize),
    /// The positions of the listed sessions.
    Listed(BTreeSet<usize>),
    /// `update_data`'s answer: applied or not, and the data as stored then.
    Updated(bool, Vec<(String, serde_json::Value)>),
    Failed(&'static str),
}

#[derive(Debug, PartialEq)]
struct View {
    user: String,
    roles: Vec<String>,
    permissions: Vec<String>,
    data: Vec<(String, serde_json::Value)>,
}

fn view(session: &Session) -> View {
    View {
        user: session.user_id().to_owned(),
        roles: session.roles().to_vec(),
        permissions: session.permissions().to_vec(),
        data: session
            .data()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect(),
    }
}

fn failed(e: &Error) -> Seen {
    Seen::Failed(match e {
        Error::NotFound => "not found",
        Error::InvalidInput(_) => "invalid input",
        Error::Corrupt(_) => "corrupt",
        Error::Unavailable { .. } => "unavailable",
        Error::LoginSuperseded => "superseded",
        _ => "other",
    })
}

fn seen<T>(result: Result<T, Error>, f: impl FnOnce(T) -> Seen) -> Seen {
    result.map_or_else(|e| failed(&e), f)
}

fn listed(names: &[usize]) -> Vec<String> {
    names.iter().map(|&i| NAMES[i].to_owned()).collect()
}

/// One store, the tokens it handed out (by position) with their sessions' public handles
/// (`None`: a rotated session gone before it could be loaded), and the login epochs it last
/// read.
struct Run<S> {
    store: S,
    tokens: Vec<(Token, Option<SessionHandle>)>,
    /// What `new_login` last handed out, by user.
    epochs: HashMap<usize, NewSession>,
}

impl<S: SessionStore> Run<S> {
    fn token(&self, pick: usize) -> Option<&Token> {
        (!self.tokens.is_empty()).then(|| &self.tokens[pick % self.tokens.len()].0)
    }

    /// Applies `op`; `None` when the op needs a token and there is none yet (skipped by both).
    async fn apply(&mut self, op: &Op) -> Option<Seen> {
        Some(match op {
            Op::Create {
                user,
                roles,
                data,
                with_epoch,
            } => {
                let begun = self.epochs.get(user).filter(|_| *with_epoch).cloned();
                let mut new = begun
                    .unwrap_or_else(|| NewSession::new(USERS[*user]))
                    .with_roles(listed(roles));
                if let Some(v) = data {
                    let mut d = SessionData::new();
                    d.insert("v", v).ok()?;
                    new = new.with_data(d);
                }
                match self.store.create(new).await {
                    Ok((token, session)) => {
                        self.tokens.push((token, Some(session.handle())));
                        Seen::Session(Some(view(&session)))
                    }
                    Err(e) => failed(&e),
                }
            }
            Op::CreateAnonymous(data) => {
                let mut d = SessionData::new();
                if let Some(v) = data {
                    d.insert("v", v).ok()?;
                }
                match self
                    .store
                    .create(NewSession::anonymous().with_data(d))
                    .await
                {
                    Ok((token, session)) => {
                        self.tokens.push((token, Some(session.handle())));
                        Seen::Session(Some(view(&session)))
                    }
                    Err(e) => failed(&e),
                }
            }
            Op::ReadEpoch(u) => match self.store.new_login(USERS[*u]).await {
                Ok(epoch) => {
                    self.epochs.insert(*u, epoch);
                    Seen::Done
                }
                Err(e) => failed(&e),
            },
            Op::UpdateData {
                session,
                key,
                value,
                expect,
            } => {
                let token = self.token(*session)?.clone();
                let mut changes = DataChanges::new();
                if let Some(expected) = expect {
                    changes.expect(KEYS[*key], expected.as_ref()).ok()?;
                }
                match value {
                    Some(v) => changes.set(KEYS[*key], v).ok()?,
                    None => changes.remove(KEYS[*key]),
                };
                let (applied, update) = match self.store.update_data(&token, &changes).await {
                    Err(Error::Conflict { data }) => (false, Ok(data)),
                    update => (true, update),
                };
                seen(update, |data| {
                    let pairs = data.iter().map(|(k, v)| (k.to_owned(), v.clone()));
                    Seen::Updated(applied, pairs.collect())
                })
            }
            Op::Load(i) => {
                let token = self.token(*i)?;
                seen(self.store.load(token).await, |s| {
                    Seen::Session(s.as_ref().map(view))
                })
            }
            Op::SaveData(i, v) => {
                let token = self.token(*i)?.clone();
                let mut d = SessionData::new();
                d.insert("saved", v).ok()?;
                seen(self.store.save_data(&token, &d).await, |()| Seen::Done)
            }
            Op::Rotate(i) => {
                let token = self.token(*i)?.clone();
                match self.store.rotate(&token).await {
                    Ok(new) => {
                        // The new token's handle, from its session (a load: both runs do it).
                        let loaded = self.store.load(&new).await.ok().flatten();
                        self.tokens.push((new, loaded.map(|s| s.handle())));
                        Seen::Done
                    }
                    Err(e) => failed(&e),
                }
            }
            Op::Reauthenticate(i) => {
                let token = self.token(*i)?.clone();
                match self.store.reauthenticate(&token, "password").await {
                    Ok((new, session)) => {
                        self.tokens.push((new, Some(session.handle())));
                        Seen::Session(Some(view(&session)))
                    }
                    Err(e) => failed(&e),
                }
            }
            Op::Delete(i) => {
                let token = self.token(*i)?.clone();
                seen(self.store.delete(&token).await, Seen::Bool)
            }
            Op::List(u) => {
                let infos = self.store.list_user_sessions(USERS[*u]).await;
                seen(infos, |infos| {
                    let handles: BTreeSet<_> = infos.into_iter().map(|i| i.handle).collect();
                    Seen::Listed(
                        self.tokens
                            .iter()
                            .enumerate()
                            .filter(|(_, (_, h))| h.as_ref().is_some_and(|h| handles.contains(h)))
                            .map(|(n, _)| n)
                            .collect(),
                    )
                })
            }
            Op::SetAuthz {
                user,
                roles,
                permissions,
            } => {
                let changed = self
                    .store
                    .set_user_authz(USERS[*user], &listed(roles), &listed(permissions))
                    .await;
                seen(changed, Seen::Count)
            }
            Op::DeleteUserSession(u, i) => {
                self.token(*i)?;
                let handle = self.tokens[*i % self.tokens.len()]
                    .1
                    .clone()
                    .unwrap_or_else(|| SessionHandle::new("gone"));
                let deleted = self.store.delete_user_session(USERS[*u], &handle).await;
                seen(deleted, Seen::Bool)
            }
            Op::DeleteUserSessions(u) => seen(
                self.store
                    .delete_user_sessions(USERS[*u], EndReason::Revoked)
                    .await,
                Seen::Count,
            ),
            Op::DeleteOthers(u, i) => {
                let keep = self.token(*i)?.clone();
                let ended = self
                    .store
                    .delete_other_user_sessions(USERS[*u], &keep, EndReason::Revoked)
                    .await;
                seen(ended, Seen::Count)
            }
        })
    }
}

fn config(clock: &Clock) -> SessionConfig {
    SessionConfig::builder()
        .key_prefix(unique_prefix())
        .max_sessions_per_user(Some(MAX_PER_USER))
        .clock(clock.clone())
        .build()
        .expect("a valid configuration")
}

async fn agree(target: RedisTarget, ops: Vec<Op>) -> Result<(), TestCaseError> {
    // Redis's key TTLs run on real time; the manual clock starts at now and moves far less than
    // any timeout during a case, so the two never disagree about what has expired.
    let clock = Clock::manual(SystemTime::now());
    let config = config(&clock);
    let mut model = Run {
        store: MemoryStore::new(config.clone()),
        tokens: Vec::new(),
        epochs: HashMap::new(),
    };
    let redis = RedisStore::connect(target, config)
        .await
        .and_then(|store| store.with_operation_timeout(Duration::from_secs(5)))
        .map_err(|e| TestCaseError::fail(format!("connect: {e}")))?;
    let mut real = Run {
        store: redis,
        tokens: Vec::new(),
        epochs: HashMap::new(),
    };
    for (step, op) in ops.iter().enumerate() {
        if matches!(op, Op::Create { .. }) {
            // Eviction ends a user's oldest sessions; Redis orders them by creation time in ms,
            // so two logins in one millisecond would have no defined order.
            clock.advance(Duration::from_millis(2)).unwrap();
        }
        let expected = model.apply(op).await;
        let got = real.apply(op).await;
        prop_assert_eq!(
            &got,
            &expected,
            "step {} ({:?}): RedisStore and MemoryStore disagree",
            step,
            op
        );
    }
    // Afterwards every token loads alike (eviction and revocation included).
    for n in 0..model.tokens.len() {
        let expected = model.apply(&Op::Load(n)).await;
        let got = real.apply(&Op::Load(n)).await;
        prop_assert_eq!(&got, &expected, "token {} at the end", n);
    }
    Ok(())
}

/// Runs `cases` random sequences against the Redis store `target` makes.
fn check(cases: u32, target: impl Fn() -> RedisTarget) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let ops = proptest::collection::vec(op(), 1..30);
    let result = runner.run(&ops, |ops| rt.block_on(agree(target(), ops)));
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn memory_and_redis_stores_agree_on_any_sequence_of_operations() {
    let server = RedisServer::start_local().expect("a redis-server of the test's own");
    check(256, || RedisTarget::Single(server.url().to_owned()));
}

#[test]
fn memory_and_redis_cluster_stores_agree_on_any_sequence_of_operations() {
    let cluster = RedisCluster::start(3, 0).expect("a local Redis Cluster");
    check(96, || RedisTarget::Cluster(cluster.urls()));
}
