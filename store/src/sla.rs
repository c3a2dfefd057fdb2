//! The SLA deadline index (`sla_due`): per ticket, when its clocks next
//! need a look, so that a tick reads only the tickets changed since the
//! last look and those whose next deadline has come, not every ticket.
//!
//! Each row carries a change stamp: a ticket written while a tick was
//! judging it keeps its "look again" mark, because the tick's write only
//! lands on the stamp it read.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, instant};

/// A ticket changed (or appeared): its SLA clocks are due for a look at
/// the next tick, and a tick that read the older version will not
/// overwrite this mark (the stamp moves).
pub(crate) async fn mark_sla_due<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    source: &str,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sla_due (source, id, next_due, stamp) VALUES ($1, $2, '', 1) \
         ON CONFLICT (source, id) DO UPDATE SET next_due = '', stamp = sla_due.stamp + 1",
    )
    .bind(source)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// A stored ticket the SLA tick must look at (see [`Store::sla_due_tickets`]).
#[derive(Clone, Debug)]
pub struct DueTicket {
    pub source: String,
    pub id: String,
    pub snapshot: String,
    /// The change stamp read with it, handed back to [`Store::set_sla_due`].
    pub stamp: i64,
}

/// When a ticket the tick looked at next needs a look (see
/// [`Store::set_sla_due`]).
#[derive(Clone, Copy, Debug)]
pub struct NextLook<'a> {
    /// The due ticket as it was read, with its change stamp.
    pub ticket: &'a DueTicket,
    /// Its next SLA deadline; none: not until it changes.
    pub next_due: Option<DateTime<Utc>>,
}

impl Store {
    /// The tickets the SLA tick must look at, at `now`: those changed since
    /// their last look and those whose next deadline is at or before `now`,
    /// found through the deadline index. When `basis` (what the stored
    /// deadlines were computed with) is not the stored one, every ticket is
    /// due once and `basis` is stored.
    pub async fn sla_due_tickets(
        &self,
        now: DateTime<Utc>,
        basis: &str,
    ) -> Result<Vec<DueTicket>, StoreError> {
        let stored: Option<String> = sqlx::query("SELECT basis FROM sla_basis WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0));
        if stored.as_deref() != Some(basis) {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE sla_due SET next_due = ''")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sla_basis (id, basis) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET basis = excluded.basis",
            )
            .bind(basis)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        let rows = sqlx::query(
            "SELECT d.source, d.id, t.snapshot, d.stamp FROM sla_due d \
             JOIN tickets t ON t.source = d.source AND t.id = d.id \
             WHERE d.next_due <= $1 ORDER BY d.source, d.id",
        )
        .bind(instant(now))
        .fetch_all(&self.pool)
        .await?;
        self.count_read(rows.len());
        Ok(rows
            .into_iter()
            .map(|r| DueTicket {
                source: r.get(0),
                id: r.get(1),
                snapshot: r.get(2),
                stamp: r.get(3),
            })
            .collect())
    }

    /// Records when each looked-at ticket next needs a look (`None`: not
    /// until it changes), in one transaction. A ticket changed since it was
    /// read (its stamp moved) keeps its mark.
    pub async fn set_sla_due(&self, looked: &[NextLook<'_>]) -> Result<(), StoreError> {
        // Several hundred rows a statement: a first tick (or one after a
        // mapping change) writes every ticket's deadline.
        const ROWS: usize = 500;
        let mut tx = self.pool.begin().await?;
        for chunk in looked.chunks(ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 4 * i;
                    format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
                })
                .collect();
            // VALUES columns are column1… on both databases.
            let sql = format!(
                "UPDATE sla_due SET next_due = v.column3 FROM (VALUES {}) AS v \
                 WHERE sla_due.source = v.column1 AND sla_due.id = v.column2 AND sla_due.stamp = v.column4",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for NextLook {
                ticket: t,
                next_due,
            } in chunk
            {
                q = q
                    .bind(t.source.clone())
                    .bind(t.id.clone())
                    .bind(next_due.map(instant))
                    .bind(t.stamp);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
