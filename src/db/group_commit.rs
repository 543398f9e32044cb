//! Refresh-token rotations committed in groups: the rotations that arrive while one
//! transaction is being written wait for the next, and go in together.
//!
//! A rotation's cost is its commit. SQLite has one writer at a time and each commit waits
//! for its `fsync` (`synchronous=FULL`); rotating one token per transaction held the write
//! lock through a round trip to sqlx's connection thread for every request. Here one task
//! per service writes every waiting rotation in one statement of one transaction, whatever
//! their number, so the commit and its `fsync` are shared.
//!
//! Nothing about a single rotation changes: each moves its session from the generation
//! its token carries to the next with a conditional statement (`generation = ?`, so of
//! concurrent rotations of one token, in this process or on another replica, exactly one
//! succeeds), and only while the session is at its user's `token_version`. Sessions are
//! locked in `id` order (see `session`'s comment on lock order). If a group's transaction
//! fails, each of its rotations is retried alone, so one bad rotation cannot fail the
//! others.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
};

use sea_orm::{
    sea_query::{Expr, LockType, Query, SimpleExpr},
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, Order,
    QueryFilter, QueryTrait, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use super::{session, user, Db};

/// Most rotations written in one transaction.
const MAX_GROUP: usize = 256;

/// One rotation: session `session_id` moves on from `generation`.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub session_id: String,
    /// The generation the presented token carries, which must be the session's.
    pub generation: i64,
    /// Unix seconds: the rotation's time, and when the new refresh token expires.
    pub now: i64,
    pub expires_at: i64,
}

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

    /// Moves `rotation.session_id` on from `rotation.generation`; `false` if the session
    /// is not there at that generation (rotated already, by this or any replica, ended,
    /// or behind its user's `token_version`).
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
    match advance(&txn, rotations).await {
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

/// Moves each session of `rotations` that is at the rotation's generation (and at its
/// user's `token_version`) to the next, in one statement; for each rotation, whether it
/// did. Of two rotations of one session at one generation, the first rotates.
async fn advance(txn: &DatabaseTransaction, rotations: &[Rotation]) -> Result<Vec<bool>, DbErr> {
    use session::Column as C;
    let now = rotations.iter().map(|r| r.now).max().unwrap_or_default();
    let expires_at = rotations
        .iter()
        .map(|r| r.expires_at)
        .max()
        .unwrap_or_default();
    let at_generation = rotations.iter().fold(Condition::any(), |any, r| {
        any.add(
            Condition::all()
                .add(C::Id.eq(r.session_id.as_str()))
                .add(C::Generation.eq(r.generation)),
        )
    });
    let user_version = Query::select()
        .column(user::Column::TokenVersion)
        .from(user::Entity)
        .and_where(Expr::col((user::Entity, user::Column::Id)).equals((session::Entity, C::UserId)))
        .to_owned();
    let current = Expr::col((session::Entity, C::TokenVersion)).eq(SimpleExpr::SubQuery(
        None,
        Box::new(user_version.into_sub_query_statement()),
    ));
    let locked = Query::select()
        .column(C::Id)
        .from(session::Entity)
        .cond_where(at_generation.clone())
        .and_where(current)
        .order_by(C::Id, Order::Asc)
        .lock(LockType::Update)
        .to_owned();
    let mut update = session::Entity::update_many()
        .col_expr(C::Generation, Expr::col(C::Generation).add(1))
        .col_expr(C::RotatedAt, Expr::value(now))
        .col_expr(C::LastUsedAt, Expr::value(now))
        .col_expr(C::ExpiresAt, Expr::value(expires_at))
        .filter(C::Id.in_subquery(locked))
        .filter(at_generation)
        .into_query();
    update.returning(Query::returning().columns([C::Id, C::Generation]));
    let backend = txn.get_database_backend();
    let rows = txn.query_all(backend.build(&update)).await?;
    // Each row is a session and the generation it moved from.
    let mut moved = rows
        .iter()
        .map(|row| {
            let id: String = row.try_get_by_index(0)?;
            let generation: i64 = row.try_get_by_index(1)?;
            Ok((id, generation - 1))
        })
        .collect::<Result<HashSet<_>, DbErr>>()?;
    Ok(rotations
        .iter()
        .map(|r| moved.remove(&(r.session_id.clone(), r.generation)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::hot_reads::tests::{add_session, database_with_a_session};

    fn rotation(session_id: &str, generation: i64) -> Rotation {
        Rotation {
            session_id: session_id.into(),
            generation,
            now: 500,
            expires_at: 1_000_000,
        }
    }

    async fn generation(db: &Db, id: &str) -> i64 {
        session::find(db, id).await.unwrap().unwrap().generation
    }

    #[tokio::test]
    async fn a_group_rotates_each_session_once_and_moves_each_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        add_session(&db, "s2").await;
        let group = [
            rotation("s1", 0),
            rotation("s2", 0),
            rotation("s1", 0),
            rotation("s2", 7),
            rotation("unknown", 0),
        ];
        assert_eq!(
            rotate_group(&db, &group).await.unwrap(),
            [true, true, false, false, false]
        );
        for id in ["s1", "s2"] {
            let s = session::find(&db, id).await.unwrap().unwrap();
            assert_eq!(
                (s.generation, s.rotated_at, s.last_used_at, s.expires_at),
                (1, Some(500), 500, 1_000_000),
                "{id}"
            );
        }
        // Rotated: the same generation again changes nothing; the next one rotates.
        assert_eq!(rotate_group(&db, &group[..1]).await.unwrap(), [false]);
        assert_eq!(
            rotate_group(&db, &[rotation("s1", 1)]).await.unwrap(),
            [true]
        );
        assert_eq!(generation(&db, "s1").await, 2);
    }

    #[tokio::test]
    async fn a_session_behind_its_users_token_version_does_not_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        add_session(&db, "s2").await;
        // The user moved on without ending the sessions (as a login that raced a password
        // change leaves one behind).
        user::Entity::update_many()
            .col_expr(user::Column::TokenVersion, Expr::value(5))
            .exec(&db)
            .await
            .unwrap();
        assert_eq!(
            rotate_group(&db, &[rotation("s1", 0), rotation("s2", 0)])
                .await
                .unwrap(),
            [false, false]
        );
        assert_eq!(generation(&db, "s1").await, 0);
    }

    #[tokio::test]
    async fn a_rotation_that_fails_fails_alone_and_the_rest_of_its_group_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        add_session(&db, "s2").await;
        // Any update of s2 fails, and with it the group's one statement.
        db.execute_unprepared(
            "CREATE TRIGGER refuse_s2 BEFORE UPDATE ON sessions WHEN OLD.id = 's2' \
             BEGIN SELECT RAISE(ABORT, 's2 refused'); END",
        )
        .await
        .unwrap();
        let results = write_group(&db, &[rotation("s1", 0), rotation("s2", 0)]).await;
        assert!(matches!(results[0], Ok(true)), "{results:?}");
        assert!(results[1].is_err(), "{results:?}");
        assert_eq!(generation(&db, "s1").await, 1, "the good rotation");
        assert_eq!(
            generation(&db, "s2").await,
            0,
            "the failed one changed nothing"
        );
    }

    #[tokio::test]
    async fn concurrent_rotations_through_the_queue_each_get_their_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let db = database_with_a_session(dir.path()).await;
        for i in 0..40 {
            add_session(&db, &format!("s-{i}")).await;
        }
        let queue = RotationQueue::new(&db);
        let tasks: Vec<_> = (0..40)
            .flat_map(|i| [i, i])
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    (
                        i,
                        queue.rotate(rotation(&format!("s-{i}"), 0)).await.unwrap(),
                    )
                })
            })
            .collect();
        let mut rotated = [0; 40];
        for task in tasks {
            let (i, done) = task.await.unwrap();
            rotated[i] += usize::from(done);
        }
        assert_eq!(rotated, [1; 40], "each session rotated exactly once");
    }
}
