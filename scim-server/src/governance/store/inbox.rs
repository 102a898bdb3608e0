//! A reviewer's inbox and a review's items, a page at a time: read-only statements for the
//! console's governance pages (migration 0070 indexes them). The API's
//! [`GovStore::items`] loads a review's items whole; a console page never does. The pool
//! dispatch is the parent module's `on_pool!`, named by path (`super::on_pool!`).

use super::{GovStore, ItemRow};
use crate::store::Result;

/// Which items of a reviewer's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxFilter {
    /// Waiting for a decision.
    Undecided,
    /// Decided already (while the review is still active, a decision can be changed).
    Decided,
}

/// The most names one person is matched by (their e-mail address and user name).
pub const MAX_REVIEWER_NAMES: usize = 4;

/// `WHERE` of the inbox: items of the tenant's active reviews whose reviewer, or reviewer's
/// e-mail address, is one of the names (`$2…`, lower-cased by the caller), in `filter`.
fn inbox_where(names: usize, filter: InboxFilter) -> String {
    let list = (0..names)
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let decided = match filter {
        InboxFilter::Undecided => "IS NULL",
        InboxFilter::Decided => "IS NOT NULL",
    };
    format!(
        "FROM gov_review_items i JOIN gov_reviews r ON r.tenant_id = i.tenant_id \
         AND r.id = i.review_id WHERE i.tenant_id = $1 AND r.status = 'active' \
         AND (LOWER(i.reviewer) IN ({list}) OR LOWER(i.reviewer_email) IN ({list})) \
         AND i.decision {decided}"
    )
}

impl GovStore {
    /// Items of active reviews assigned to `names` (compared case-insensitively, ASCII), in
    /// (review, item) order after `after`, at most `limit`.
    pub async fn inbox_items(
        &self,
        tenant: &str,
        names: &[String],
        filter: InboxFilter,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        let names: Vec<String> = names
            .iter()
            .take(MAX_REVIEWER_NAMES)
            .map(|n| n.to_ascii_lowercase())
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let n = names.len();
        let mut sql = format!("SELECT i.* {}", inbox_where(n, filter));
        if after.is_some() {
            sql.push_str(&format!(
                " AND (i.review_id > ${a} OR (i.review_id = ${a} AND i.id > ${b}))",
                a = n + 2,
                b = n + 3
            ));
        }
        let limit_at = n + 2 + if after.is_some() { 2 } else { 0 };
        sql.push_str(&format!(" ORDER BY i.review_id, i.id LIMIT ${limit_at}"));
        super::on_pool!(self, |pool| {
            let mut q = sqlx::query_as::<_, ItemRow>(&sql).bind(tenant);
            for name in &names {
                q = q.bind(name);
            }
            if let Some((review, item)) = after {
                q = q.bind(review).bind(item);
            }
            Ok(q.bind(limit).fetch_all(pool).await?)
        })
    }

    /// How many items [`GovStore::inbox_items`] would list without a page.
    pub async fn inbox_count(
        &self,
        tenant: &str,
        names: &[String],
        filter: InboxFilter,
    ) -> Result<u64> {
        let names: Vec<String> = names
            .iter()
            .take(MAX_REVIEWER_NAMES)
            .map(|n| n.to_ascii_lowercase())
            .collect();
        if names.is_empty() {
            return Ok(0);
        }
        let sql = format!("SELECT COUNT(*) {}", inbox_where(names.len(), filter));
        let count: i64 = super::on_pool!(self, |pool| {
            let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(tenant);
            for name in &names {
                q = q.bind(name);
            }
            q.fetch_one(pool).await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Items of one review in id order after `after`, at most `limit`.
    pub async fn review_items_page(
        &self,
        tenant: &str,
        review: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        super::on_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM gov_review_items WHERE tenant_id = $1 AND review_id = $2 \
                 AND id > $3 ORDER BY id LIMIT $4",
            )
            .bind(tenant)
            .bind(review)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// One item of a review.
    pub async fn review_item(
        &self,
        tenant: &str,
        review: &str,
        item: &str,
    ) -> Result<Option<ItemRow>> {
        super::on_pool!(self, |pool| {
            Ok(sqlx::query_as(
                "SELECT * FROM gov_review_items WHERE tenant_id = $1 AND review_id = $2 AND id = $3",
            )
            .bind(tenant)
            .bind(review)
            .bind(item)
            .fetch_optional(pool)
            .await?)
        })
    }
}
