//! Refresh-token rotations committed in groups: the rotations that arrive while one
//! transaction is being written wait for the next, and go in together.
//!
//! A rotation's cost is its commit. SQLite has one writer at a time and each commit waits
//! for its `fsync` (`synchronous=FULL`); rotating one token per transaction held the write
//! lock through five statements, each a round trip to sqlx's connection thread, for every
//! request. Here one task per service writes every waiting rotation in one transaction of
//! three statements, whatever their number, so the commit and its `fsync` are shared.
//!
//! Nothing about a single rotation changes: each still spends its token with a conditional
//! statement (`spent_at IS NULL`, so of concurrent rotations of one token, in this process
//! or on another replica, exactly one succeeds) and stores its successor in the same
//! transaction, so a crash leaves both or neither. If a group's transaction fails, each of
//! its rotations is retried alone, so one bad rotation cannot fail the others.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
};

use sea_orm::{
    sea_query::{CaseStatement, Expr, Query},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryTrait,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use super::{
    refresh_token,
    session::{self, Rotation},
    Db,
};

/// Most rotations written in one transaction.
const MAX_GROUP: usize = 256;

type Job = (Rotation, oneshot::Sender<Result<bool, DbErr>>);

/// The queue of rotations waiting to be written; cheap to clone.
#[derive(Clone)]
pub struct RotationQueue {
    db: Db,
    /// The writer task, started on first use (it needs the runtime).
    jobs: Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl RotationQueue {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            jobs: Arc::default(),
        }
    }

    /// Spends `rotation.spent_hash` and stores its successor; `false` if the token was
    /// spent already, by this or any replica (see the module's comment).
    pub async fn rotate(&self, rotation: Rotation) -> Result<bool, DbErr> {
        let jobs = self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
            tokio::spawn(write_groups(self.db.clone(), rx));
            tx
        });
        let (done, result) = oneshot::channel();
        let stopped = || DbErr::Custom("the rotation writer has stopped".into());
        jobs.send((rotation, done)).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

/// The writer task: takes every rotation waiting, writes them in one transaction, answers
/// each; stops when every [`RotationQueue`] is gone.
async fn write_groups(db: Db, mut jobs: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (rotations, answers): (Vec<Rotation>, Vec<_>) = group.drain(..).unzip();
        let results = write_group(&db, &rotations).await;
        for (answer, result) in answers.into_iter().zip(results) {
            // A caller that went away (its client disconnected) needs no answer.
            let _ = answer.send(result);
        }
    }
}

/// Each rotation's result: all written in one transaction, or, if that fails, each in
/// one of its own, so that only a rotation that fails alone fails.
async fn write_group(db: &Db, rotations: &[Rotation]) -> Vec<Result<bool, DbErr>> {
    match rotate_group(db, rotations).await {
        Ok(rotated) => rotated.into_iter().map(Ok).collect(),
        Err(e) if rotations.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, rotations = rotations.len(), "a group of rotations failed; retrying each alone");
            let mut results = Vec::with_capacity(rotations.len());
            for rotation in rotations {
                let alone = rotate_group(db, std::slice::from_ref(rotation)).await;
                results.push(alone.map(|done| done.first().copied().unwrap_or(false)));
            }
            results
        }
    }
}

/// Writes `rotations` in one transaction; for each, whether it rotated.
async fn rotate_group(db: &Db, rotations: &[Rotation]) -> Result<Vec<bool>, DbErr> {
    let txn = db.begin().await?;
    match write_rotations(&txn, rotations).await {
        Ok(done) => {
            txn.commit().await?;
            Ok(done)
        }
        Err(e) => {
            // At once, not when the connection goes back to the pool: on SQLite an open
            // transaction that wrote holds the one write lock.
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

async fn write_rotations(
    txn: &DatabaseTransaction,
    rotations: &[Rotation],
) -> Result<Vec<bool>, DbErr> {
    let mut spent = spend(txn, rotations).await?;
    // Of rotations of one token, the first rotates; the others find it spent.
    let done: Vec<bool> = rotations
        .iter()
        .map(|r| spent.remove(&r.spent_hash))
        .collect();
    let rotated: Vec<&Rotation> = rotations
        .iter()
        .zip(&done)
        .filter_map(|(r, done)| done.then_some(r))
        .collect();
    if !rotated.is_empty() {
        store_successors(txn, &rotated).await?;
    }
    Ok(done)
}

/// Marks each unspent token of `rotations` spent, in one conditional statement; returns
/// the hashes it marked. A hash named twice is spent once.
async fn spend(
    txn: &DatabaseTransaction,
    rotations: &[Rotation],
) -> Result<HashSet<String>, DbErr> {
    let now = rotations.iter().map(|r| r.now).max().unwrap_or_default();
    let mut update = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
        .filter(
            refresh_token::Column::TokenHash.is_in(rotations.iter().map(|r| r.spent_hash.as_str())),
        )
        .filter(refresh_token::Column::SpentAt.is_null())
        .into_query();
    update.returning(Query::returning().column(refresh_token::Column::TokenHash));
    let backend = txn.get_database_backend();
    let rows = txn.query_all(backend.build(&update)).await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// Stores the successor of each of `rotated` and moves its session on, in two statements.
async fn store_successors(txn: &DatabaseTransaction, rotated: &[&Rotation]) -> Result<(), DbErr> {
    refresh_token::Entity::insert_many(
        rotated
            .iter()
            .map(|r| session::unspent_refresh_token(&r.session_id, r.generation, r.next.clone())),
    )
    .exec_without_returning(txn)
    .await?;
    // One rotation per session at most: only a session's current token is unspent.
    let by_session = |column: session::Column, value: fn(&Rotation) -> i64| {
        rotated
            .iter()
            .fold(CaseStatement::new(), |case, r| {
                case.case(
                    Expr::col(session::Column::Id).eq(r.session_id.as_str()),
                    value(r),
                )
            })
            .finally(Expr::col(column))
    };
    use session::Column as C;
    session::Entity::update_many()
        .col_expr(
            C::Generation,
            by_session(C::Generation, |r| r.generation).into(),
        )
        .col_expr(C::LastUsedAt, by_session(C::LastUsedAt, |r| r.now).into())
        .col_expr(
            C::ExpiresAt,
            by_session(C::ExpiresAt, |r| r.next.expires_at).into(),
        )
        .filter(session::Column::Id.is_in(rotated.iter().map(|r| r.session_id.as_str())))
        .exec(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{
        hot_reads::tests::{add_session, database_with_a_session},
        session::NewRefreshToken,
    };

    async fn store_token(db: &Db, session_id: &str, hash: &str) {
        let token = NewRefreshToken {
            token_hash: hash.into(),
            expires_at: i64::MAX,
        };
        refresh_token::Entity::insert(session::unspent_refresh_token(session_id, 0, token))
            .exec_without_returning(db)
            .await
            .unwrap();
    }

    fn rotation(session_id: &str, spent: &str, next: &str) -> Rotation {
        Rotation {
            session_id: session_id.into(),
            spent_hash: spent.into(),
            next: NewRefreshToken {
                token_hash: next.into(),
                expires_at: 1_000_000,
            },
            generation: 1,
            now: 500,
        }
    }

    #[tokio::test]
    async fn a_group_rotates_each_token_once_and_moves_each_session_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        add_session(&db, "s2").await;
        store_token(&db, "s1", "a0").await;
        store_token(&db, "s2", "b0").await;
        let group = [
            rotation("s1", "a0", "a1"),
            rotation("s2", "b0", "b1"),
            rotation("s1", "a0", "a1-again"),
            rotation("s2", "unknown", "x"),
        ];
        assert_eq!(
            rotate_group(&db, &group).await.unwrap(),
            [true, true, false, false]
        );

        let mut stored: Vec<String> = refresh_token::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|t| format!("{}:{}", t.token_hash, t.spent_at.is_some()))
            .collect();
        stored.sort();
        assert_eq!(stored, ["a0:true", "a1:false", "b0:true", "b1:false"]);
        for id in ["s1", "s2"] {
            let s = session::find(&db, id).await.unwrap().unwrap();
            assert_eq!(
                (s.generation, s.last_used_at, s.expires_at),
                (1, 500, 1_000_000),
                "{id}"
            );
        }
        // Spent: a second group changes nothing.
        assert_eq!(rotate_group(&db, &group[..1]).await.unwrap(), [false]);
    }

    #[tokio::test]
    async fn a_rotation_that_fails_fails_alone_and_the_rest_of_its_group_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        add_session(&db, "s2").await;
        store_token(&db, "s1", "a0").await;
        store_token(&db, "s2", "b0").await;
        store_token(&db, "s2", "taken").await;
        // The second successor's hash is stored already: its insert, and so the group's
        // transaction, fails.
        let group = [rotation("s1", "a0", "a1"), rotation("s2", "b0", "taken")];
        let results = write_group(&db, &group).await;
        assert!(matches!(results[0], Ok(true)), "{results:?}");
        assert!(results[1].is_err(), "{results:?}");
        let spent = |hash: &'static str| {
            let db = db.clone();
            async move {
                refresh_token::Entity::find_by_id(hash)
                    .one(&db)
                    .await
                    .unwrap()
                    .map(|t| t.spent_at.is_some())
            }
        };
        assert_eq!(spent("a0").await, Some(true));
        assert_eq!(
            spent("a1").await,
            Some(false),
            "the good rotation's successor"
        );
        assert_eq!(
            spent("b0").await,
            Some(false),
            "the failed rotation changed nothing"
        );
    }

    #[tokio::test]
    async fn concurrent_rotations_through_the_queue_each_get_their_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        for i in 0..40 {
            add_session(&db, &format!("s-{i}")).await;
            store_token(&db, &format!("s-{i}"), &format!("t-{i}")).await;
        }
        let queue = RotationQueue::new(&db);
        let tasks: Vec<_> = (0..40)
            .flat_map(|i| [i, i])
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let r = rotation(&format!("s-{i}"), &format!("t-{i}"), &format!("n-{i}"));
                    (i, queue.rotate(r).await.unwrap())
                })
            })
            .collect();
        let mut rotated = [0; 40];
        for task in tasks {
            let (i, done) = task.await.unwrap();
            rotated[i] += usize::from(done);
        }
        assert_eq!(rotated, [1; 40], "each token rotated exactly once");
    }
}
