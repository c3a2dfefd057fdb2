//! Which instance runs the schedules: on PostgreSQL, the one holding a
//! session advisory lock (released with its connection, so a dead leader's
//! successor takes over); on SQLite, the one process that may write.

use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// The advisory lock key of the schedule leader ("cbridge1" in ASCII).
const LEADER_LOCK: i64 = 0x6362_7269_6467_6531;

/// Held by the instance that runs the schedules.
pub struct Leadership(Option<sqlx::AnyConnection>);

impl Leadership {
    /// Is the lock still held? A broken connection has lost it.
    pub async fn holds(&mut self) -> bool {
        match &mut self.0 {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        }
    }
}

impl Store {
    /// Tries to become the instance that runs the schedules. On PostgreSQL
    /// that is a session advisory lock held on a connection of its own; it
    /// is released when the connection closes, so a dead leader's successor
    /// takes over. On SQLite the one instance always leads.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => Ok(Some(Leadership(None))),
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?.detach();
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                    .bind(LEADER_LOCK)
                    .fetch_one(&mut conn)
                    .await?
                    .get(0);
                if got {
                    Ok(Some(Leadership(Some(conn))))
                } else {
                    conn.close().await?;
                    Ok(None)
                }
            }
        }
    }
}
