//! The [`Store`](super::Store) implementation shared by SQLite and PostgreSQL.
//!
//! Both databases run the same statements (sqlx's SQLite driver accepts `$N` placeholders);
//! what differs is confined to [`Dialect`](super::sql::Dialect) fragments, to each store's
//! write transaction (`begin_write` … `commit_write`: both start a write deferred, kept in
//! memory until its commit; SQLite then commits it in a group with other writes, PostgreSQL
//! sends it as one statement) and to the change log's sealing (SQLite: in the write's transaction; PostgreSQL:
//! after commit, `after_write` and `seal_pending`, see [`super::seal`]). The macro
//! expands the one body for each driver's concrete types, since sqlx's generic executor bounds
//! do not make a readable generic implementation.

/// The second half of an update where the dialect sets indexed columns apart
/// ([`Dialect::sets_indexed_columns_apart`](super::sql::Dialect::sets_indexed_columns_apart)):
/// the columns with an index of their own (`$6`…`$8` of the update's arguments), written only
/// when one of them changed. Most updates (Entra's `PATCH`es of e-mail, name, `active`) change
/// none, and then touch none of those indexes.
pub(super) const UPDATE_CHANGED_KEYS: &str = "UPDATE resources SET unique_key = $6, external_id = $7, manager_id = $8 \
     WHERE tenant_id = $1 AND resource_type = $2 AND id = $3 \
     AND (unique_key IS DISTINCT FROM $6 OR external_id IS DISTINCT FROM $7 \
     OR manager_id IS DISTINCT FROM $8)";

/// Implements `Store` for `$store` over database `$db`. The store provides `pool`,
/// `pooled_read()` (a hot read on the store's read connections), `inline_reads()` (SQLite's reads on
/// the calling thread, tried first: [`InlineReads`](super::inline_reads::InlineReads)), `dialect()`,
/// `begin_write()`, `append_record()`, `commit_write()`, `seal_pending()` and
/// `append_event_own()`.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Runs a hot read: on SQLite first on the calling thread (`map` takes its rows,
            /// see `inline_reads.rs`), else, and whenever that hands it back, by the store's
            /// `pooled_read` (SQLite: sqlx's `FromRow` takes the rows; PostgreSQL: the shared
            /// connections' `DecodeRow`, `pg_clients.rs`).
            async fn hot_read<T>(
                &self,
                sql: &str,
                args: &[$crate::store::sql::Arg],
                map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
            ) -> $crate::store::Result<Vec<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row>
                    + $crate::store::pg_clients::DecodeRow
                    + Send
                    + Unpin,
            {
                if let Some(rows) = self
                    .inline_reads()
                    .and_then(|reads| reads.query(sql, args, map))
                {
                    return Ok(rows);
                }
                self.pooled_read(sql, args).await
            }

            async fn append_change(
                &self,
                w: &mut WriteTx,
                ctx: &$crate::store::WriteContext,
                resource_type: &str,
                id: &str,
                change: &scim_core::change::Change,
            ) -> $crate::store::Result<()> {
                let body = $crate::store::chain::RecordBody::write(resource_type, id, change)?;
                self.append_record(w, ctx, body).await
            }

            /// Change records after `after`, sealed ones only (the caller seals first).
            async fn read_changes(
                &self,
                tenant: &str,
                after: u64,
                limit: u64,
            ) -> $crate::store::Result<Vec<$crate::store::ChangeRecord>> {
                let rows: Vec<$crate::store::row::ChangeRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM scim_changes WHERE tenant_id = $1 AND tenant_seq > $2 \
                     ORDER BY tenant_seq LIMIT $3",
                    $crate::store::row::CHANGE_COLUMNS
                ))
                .bind(tenant)
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            /// Inserts a resource's `resource_values` rows in one statement (a JSON array of
            /// `[attr, type, value]` triples), one round trip whatever their number.
            async fn insert_values(
                &self,
                w: &mut WriteTx,
                tenant: &str,
                id: &str,
                values: &[$crate::store::row::ValueRow],
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::Arg;
                if values.is_empty() {
                    return Ok(());
                }
                let triples: Vec<(&str, Option<&str>, &str)> = values
                    .iter()
                    .map(|v| (v.attr, v.type_ci.as_deref(), v.value_ci.as_str()))
                    .collect();
                let json = serde_json::to_string(&triples)
                    .map_err(|e| $crate::store::StoreError::Corrupt(format!("values: {e}")))?;
                let rows = match self.dialect() {
                    $crate::store::sql::Dialect::Sqlite => {
                        "SELECT $1, $2, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), \
                         json_extract(j.value, '$[2]') FROM json_each($3) AS j"
                    }
                    $crate::store::sql::Dialect::Postgres => {
                        "SELECT $1, $2, j.e ->> 0, j.e ->> 1, j.e ->> 2 \
                         FROM jsonb_array_elements($3::jsonb) AS j(e)"
                    }
                };
                w.queue(
                    &format!(
                        "INSERT INTO resource_values (tenant_id, resource_id, attr, type_ci, value_ci) {rows}"
                    ),
                    vec![Arg::Text(tenant.to_string()), Arg::Text(id.to_string()), Arg::Text(json)],
                )
                .await
            }

            /// Adds members by id in one statement; ids naming no resource of the tenant are
            /// skipped (the pipeline has already dropped them, this keeps the table consistent
            /// under a concurrent delete). Each id is looked up by the primary key (see
            /// `Dialect::string_rows`): the cost of a member `PATCH` does not grow with the
            /// number of resources.
            async fn add_members(
                &self,
                w: &mut WriteTx,
                tenant: &str,
                group: &str,
                ids: &[String],
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::Arg;
                if ids.is_empty() {
                    return Ok(());
                }
                w.queue(
                    &self.dialect().add_members_sql(),
                    vec![
                        Arg::Text(tenant.to_string()),
                        Arg::Text(group.to_string()),
                        Arg::TextArray(ids.to_vec()),
                    ],
                )
                .await
            }

            async fn apply_delta(
                &self,
                w: &mut WriteTx,
                tenant: &str,
                group: &str,
                delta: &scim_core::patch::MembershipDelta,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::Arg;
                if delta.clear {
                    w.queue(
                        &self.dialect().clear_members_sql(),
                        vec![
                            Arg::Text(tenant.to_string()),
                            Arg::Text(group.to_string()),
                            Arg::TextArray(delta.added.clone()),
                        ],
                    )
                    .await?;
                } else if !delta.removed.is_empty() {
                    w.queue(
                        &self.dialect().remove_members_sql(),
                        vec![
                            Arg::Text(tenant.to_string()),
                            Arg::Text(group.to_string()),
                            Arg::TextArray(delta.removed.clone()),
                        ],
                    )
                    .await?;
                }
                self.add_members(w, tenant, group, &delta.added).await
            }

            /// The current version of a resource, for telling "not found" from "version
            /// mismatch" after a compare-and-swap matched no row (read in the write's
            /// transaction).
            async fn cas_failure(
                &self,
                w: &mut WriteTx,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                id: &str,
            ) -> $crate::store::StoreError {
                match w.conn().await {
                    Ok(conn) => self.stored_version_error(conn, tenant, rt, id).await,
                    Err(e) => e,
                }
            }

            /// [`StoreError::VersionMismatch`](crate::store::StoreError::VersionMismatch) with
            /// the version `executor` reads, or
            /// [`StoreError::NotFound`](crate::store::StoreError::NotFound).
            async fn stored_version_error<'e, E>(
                &self,
                executor: E,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                id: &str,
            ) -> $crate::store::StoreError
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let current: std::result::Result<Option<i64>, sqlx::Error> = sqlx::query_scalar(
                    "SELECT version FROM resources WHERE tenant_id = $1 AND resource_type = $2 AND id = $3",
                )
                .bind(tenant)
                .bind(&rt.name)
                .bind(id)
                .fetch_optional(executor)
                .await;
                match current {
                    Ok(Some(v)) => $crate::store::StoreError::VersionMismatch {
                        current: u64::try_from(v).unwrap_or_default(),
                    },
                    Ok(None) => $crate::store::StoreError::NotFound {
                        resource_type: rt.name.clone(),
                        id: id.to_string(),
                    },
                    Err(e) => e.into(),
                }
            }

            /// Begins attempt one (`second` false) or two of a write; a second attempt reads
            /// the chain head instead of trusting a remembered one.
            async fn begin_attempt(&self, second: bool) -> $crate::store::Result<WriteTx> {
                let mut w = self.begin_write().await?;
                if second {
                    w.read_heads();
                }
                Ok(w)
            }

            /// Ends a write: commits it when `outcome` is `Ok`, else rolls it back and returns
            /// the error.
            async fn finish_write(
                &self,
                w: WriteTx,
                outcome: $crate::store::Result<()>,
            ) -> $crate::store::Result<()> {
                match outcome {
                    Ok(()) => self.commit_write(w).await,
                    Err(e) => {
                        w.rollback().await;
                        Err(e)
                    }
                }
            }

            /// One attempt at [`Resources::create`](crate::store::Resources::create).
            async fn create_once(
                &self,
                ctx: &$crate::store::WriteContext,
                rt: &scim_core::schema::ResourceType,
                resource: &scim_core::resource::Resource,
                change: &scim_core::change::Change,
                second: bool,
            ) -> $crate::store::Result<()> {
                use $crate::store::row;
                use $crate::store::sql::Arg;
                let data = row::row_data(rt, resource);
                let attributes = serde_json::to_string(&data.attributes)
                    .map_err(|e| $crate::store::StoreError::Corrupt(format!("attributes: {e}")))?;
                let folded = self.dialect().has_folded_copy();
                let query_text = format!(
                    "INSERT INTO resources (tenant_id, id, resource_type, version, created_ns, \
                     last_modified_ns, unique_key, external_id, manager_id, display, attributes{}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {}{})",
                    if folded { ", attributes_ci" } else { "" },
                    self.dialect().json_param("$11"),
                    if folded { ", $12" } else { "" },
                );
                let mut args = vec![
                    Arg::Text(ctx.tenant.clone()),
                    Arg::Text(resource.id.clone()),
                    Arg::Text(rt.name.clone()),
                    Arg::Int(row::version_to_db(resource.meta.version)?),
                    Arg::Int(row::to_ns(resource.meta.created)),
                    Arg::Int(row::to_ns(resource.meta.last_modified)),
                    Arg::OptText(data.unique_key.clone()),
                    Arg::OptText(data.external_id.clone()),
                    Arg::OptText(data.manager_id.clone()),
                    Arg::OptText(data.display.clone()),
                ];
                if folded {
                    args.push(Arg::Text(row::folded_attributes(&data.attributes).to_string()));
                }
                args.insert(10, Arg::Text(attributes));
                let mut w = self.begin_attempt(second).await?;
                let outcome = async {
                    w.queue(&query_text, args).await?;
                    self.insert_values(&mut w, &ctx.tenant, &resource.id, &data.values).await?;
                    if rt.is_group() {
                        self.add_members(&mut w, &ctx.tenant, &resource.id, &data.members).await?;
                    }
                    self.append_change(&mut w, ctx, &rt.name, &resource.id, change).await
                }
                .await;
                // SQLite sends the statements with the commit: a uniqueness conflict of the
                // resource row surfaces from either.
                self.finish_write(w, outcome)
                    .await
                    .map_err(|e| row::as_uniqueness_error(e, rt, resource))
            }

            /// One attempt at [`Resources::update`](crate::store::Resources::update).
            // `update`'s arguments and which attempt this is.
            #[allow(clippy::too_many_arguments)]
            async fn update_once(
                &self,
                rt: &scim_core::schema::ResourceType,
                resource: &scim_core::resource::Resource,
                expected_version: u64,
                members: Option<&scim_core::patch::MembershipDelta>,
                steps: &[$crate::store::WriteStep<'_>],
                second: bool,
            ) -> $crate::store::Result<()> {
                use $crate::store::row;
                use $crate::store::sql::Arg;
                let Some(ctx) = steps.first().map(|s| s.ctx) else {
                    return Ok(());
                };
                if steps.iter().any(|s| s.ctx.tenant != ctx.tenant) {
                    return Err($crate::store::StoreError::Corrupt(
                        "successive writes of one resource named different tenants".into(),
                    ));
                }
                let data = row::row_data(rt, resource);
                let attributes = serde_json::to_string(&data.attributes)
                    .map_err(|e| $crate::store::StoreError::Corrupt(format!("attributes: {e}")))?;
                let folded = self.dialect().has_folded_copy();
                let keys_apart = self.dialect().sets_indexed_columns_apart();
                let query_text = format!(
                    "UPDATE resources SET version = $4, last_modified_ns = $5, {}display = $9, \
                     attributes = {}{} \
                     WHERE tenant_id = $1 AND resource_type = $2 AND id = $3 AND version = $11",
                    if keys_apart {
                        ""
                    } else {
                        "unique_key = $6, external_id = $7, manager_id = $8, "
                    },
                    self.dialect().json_param("$10"),
                    if folded { ", attributes_ci = $12" } else { "" },
                );
                let mut args = vec![
                    Arg::Text(ctx.tenant.clone()),
                    Arg::Text(rt.name.clone()),
                    Arg::Text(resource.id.clone()),
                    Arg::Int(row::version_to_db(resource.meta.version)?),
                    Arg::Int(row::to_ns(resource.meta.last_modified)),
                    Arg::OptText(data.unique_key.clone()),
                    Arg::OptText(data.external_id.clone()),
                    Arg::OptText(data.manager_id.clone()),
                    Arg::OptText(data.display.clone()),
                    Arg::Text(attributes),
                    Arg::Int(row::version_to_db(expected_version)?),
                ];
                if folded {
                    args.push(Arg::Text(row::folded_attributes(&data.attributes).to_string()));
                }
                let mut w = self.begin_attempt(second).await?;
                let outcome = async {
                    // What follows depends on the compare-and-swap (SQLite's deferred write checks
                    // it at commit instead: below).
                    let keys = keys_apart.then(|| args[..8].to_vec());
                    if !w.compare_and_swap(&query_text, args).await? {
                        return Err(self.cas_failure(&mut w, &ctx.tenant, rt, &resource.id).await);
                    }
                    if let Some(keys) = keys {
                        w.queue($crate::store::imp::UPDATE_CHANGED_KEYS, keys).await?;
                    }
                    w.queue(
                        "DELETE FROM resource_values WHERE tenant_id = $1 AND resource_id = $2",
                        vec![Arg::Text(ctx.tenant.clone()), Arg::Text(resource.id.clone())],
                    )
                    .await?;
                    self.insert_values(&mut w, &ctx.tenant, &resource.id, &data.values).await?;
                    if let (Some(delta), true) = (members, rt.is_group()) {
                        self.apply_delta(&mut w, &ctx.tenant, &resource.id, delta).await?;
                    }
                    for step in steps {
                        self.append_change(&mut w, step.ctx, &rt.name, &resource.id, step.change)
                            .await?;
                    }
                    Ok(())
                }
                .await;
                match self.finish_write(w, outcome).await {
                    // Nothing was written: what is stored now tells which error it is.
                    Err($crate::store::StoreError::CompareAndSwapLost) => Err(self
                        .stored_version_error(&self.pool, &ctx.tenant, rt, &resource.id)
                        .await),
                    other => other.map_err(|e| row::as_uniqueness_error(e, rt, resource)),
                }
            }

            /// One attempt at [`Resources::delete`](crate::store::Resources::delete).
            async fn delete_once(
                &self,
                ctx: &$crate::store::WriteContext,
                rt: &scim_core::schema::ResourceType,
                id: &str,
                expected_version: Option<u64>,
                change: &scim_core::change::Change,
                second: bool,
            ) -> $crate::store::Result<()> {
                let expected = expected_version.map($crate::store::row::version_to_db).transpose()?;
                let mut w = self.begin_attempt(second).await?;
                let outcome = async {
                    // The groups it is a member of, read before the cascade removes the rows.
                    let groups: Vec<String> = sqlx::query_scalar(&format!(
                        "SELECT group_id FROM memberships WHERE tenant_id = $1 AND member_id = $2 \
                         ORDER BY group_id{}",
                        self.dialect().byte_order()
                    ))
                    .bind(&ctx.tenant)
                    .bind(id)
                    .fetch_all(w.conn().await?)
                    .await?;
                    // Membership and value rows go with the resource (ON DELETE CASCADE).
                    let done = sqlx::query(
                        "DELETE FROM resources WHERE tenant_id = $1 AND resource_type = $2 AND id = $3 \
                         AND ($4 IS NULL OR version = $4)",
                    )
                    .bind(&ctx.tenant)
                    .bind(&rt.name)
                    .bind(id)
                    .bind(expected)
                    .execute(w.conn().await?)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(self.cas_failure(&mut w, &ctx.tenant, rt, id).await);
                    }
                    self.append_change(&mut w, ctx, &rt.name, id, change).await?;
                    // Each group that lost the member moves to a new version with a record of its
                    // own, so its ETag changes and change readers see the removal.
                    for group in groups {
                        sqlx::query(
                            "UPDATE resources SET version = version + 1, last_modified_ns = $3 \
                             WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(&ctx.tenant)
                        .bind(&group)
                        .bind($crate::store::row::to_ns(ctx.now))
                        .execute(w.conn().await?)
                        .await?;
                        let row: $crate::store::row::ResourceRow = sqlx::query_as(&format!(
                            "SELECT {} FROM resources r WHERE r.tenant_id = $1 AND r.id = $2",
                            self.dialect().resource_columns()
                        ))
                        .bind(&ctx.tenant)
                        .bind(&group)
                        .fetch_one(w.conn().await?)
                        .await?;
                        let group = row.into_resource()?;
                        let change = scim_core::change::Change::member_removed(&group, id);
                        self.append_change(&mut w, ctx, &group.resource_type, &group.id, &change)
                            .await?;
                    }
                    Ok(())
                }
                .await;
                self.finish_write(w, outcome).await
            }

            /// A Group's members (the reply shows them), in member id order.
            async fn load_members(
                &self,
                tenant: &str,
                resource: &mut scim_core::resource::Resource,
            ) -> $crate::store::Result<()> {
                use $crate::store::row;
                use $crate::store::sql::Arg;
                let rows: Vec<(String, String, Option<String>)> = self
                    .hot_read(
                        &$crate::store::sql::members_statement(self.dialect()),
                        &[Arg::Text(tenant.to_string()), Arg::Text(resource.id.clone())],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .await?;
                let list = rows
                    .into_iter()
                    .map(|(id, ty, display)| row::member_value(id, ty, display))
                    .collect();
                row::set_list(resource, "members", list);
                Ok(())
            }

            /// The members of every group on a page, in one statement whatever the page size.
            async fn load_page_members(
                &self,
                tenant: &str,
                resources: &mut [scim_core::resource::Resource],
            ) -> $crate::store::Result<()> {
                use $crate::store::row;
                use std::collections::HashMap;
                if resources.is_empty() {
                    return Ok(());
                }
                let ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
                let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
                use $crate::store::sql::Arg;
                let rows: Vec<(String, String, String, Option<String>)> = self
                    .hot_read(
                        &$crate::store::sql::members_of_statement(self.dialect()),
                        &[Arg::Text(tenant.to_string()), Arg::Text(ids)],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                    )
                    .await?;
                let mut by_group: HashMap<String, Vec<(String, String, Option<String>)>> =
                    HashMap::new();
                for (group, id, ty, display) in rows {
                    by_group.entry(group).or_default().push((id, ty, display));
                }
                for resource in resources.iter_mut() {
                    let mut members = by_group.remove(&resource.id).unwrap_or_default();
                    members.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    let list = members
                        .into_iter()
                        .map(|(id, ty, display)| row::member_value(id, ty, display))
                        .collect();
                    row::set_list(resource, "members", list);
                }
                Ok(())
            }

            /// The SQL a list query runs (page query, then its parameters), for diagnostics and
            /// the index-usage tests.
            pub fn list_sql(
                &self,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                query: &scim_core::query::ListQuery,
            ) -> $crate::store::sql::ListSql {
                $crate::store::sql::compile_list(self.dialect(), tenant, rt, query)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn migrate(&self) -> $crate::store::Result<()> {
                $crate::metrics::timed("migrate", async {
                    self.migrator()
                        .run(&self.pool)
                        .await
                        .map_err(|e| $crate::store::StoreError::Database(e.into()))
                })
                .await
            }

            async fn ping(&self) -> $crate::store::Result<()> {
                $crate::metrics::timed("ping", async {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                })
                .await
            }

            /// The two figures are read one after the other while connections come and go:
            /// idle first, so that a connection opened in between cannot make the idle count
            /// the larger (a test once saw more idle than open), and capped at the open count in
            /// case one closed in between.
            fn pool_status(&self) -> Option<$crate::store::PoolStatus> {
                let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
                let size = self.pool.size();
                Some($crate::store::PoolStatus {
                    size,
                    idle: idle.min(size),
                    reads: self.read_connections_open(),
                    writes: self.write_connections_open(),
                })
            }

            async fn refresh_statistics(&self) -> $crate::store::Result<Vec<&'static str>> {
                self.analyze_stale_tables().await
            }

        }

        #[async_trait::async_trait]
        impl $crate::store::Tenants for $store {
            async fn create_tenant(&self, tenant: &$crate::store::Tenant) -> $crate::store::Result<()> {
                $crate::metrics::timed("create_tenant", async {
                    let res = sqlx::query(
                        "INSERT INTO tenants (id, name, bulk_upsert_by_external_id, created) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&tenant.id)
                    .bind(&tenant.name)
                    .bind(tenant.bulk_upsert_by_external_id)
                    .bind($crate::store::row::format_time(tenant.created))
                    .execute(&self.pool)
                    .await;
                    match res {
                        Ok(_) => Ok(()),
                        Err(e) if $crate::store::unique_violation(&e).is_some() => {
                            Err($crate::store::StoreError::Uniqueness {
                                detail: format!("tenant {:?} already exists", tenant.id),
                            })
                        }
                        Err(e) => Err(e.into()),
                    }
                })
                .await
            }

            async fn tenant(&self, id: &str) -> $crate::store::Result<Option<$crate::store::Tenant>> {
                $crate::metrics::timed("tenant", async {
                    let row: Option<$crate::store::row::TenantRow> = sqlx::query_as(
                        "SELECT id, name, bulk_upsert_by_external_id, created FROM tenants WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                })
                .await
            }

            async fn list_tenants(&self) -> $crate::store::Result<Vec<$crate::store::Tenant>> {
                $crate::metrics::timed("list_tenants", async {
                    let rows: Vec<$crate::store::row::TenantRow> = sqlx::query_as(&format!(
                        "SELECT id, name, bulk_upsert_by_external_id, created FROM tenants ORDER BY id{}",
                        self.dialect().byte_order()
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                })
                .await
            }

            async fn insert_token(&self, token: &$crate::store::TokenRecord) -> $crate::store::Result<()> {
                $crate::metrics::timed("insert_token", async {
                    use $crate::store::row::format_time;
                    let res = sqlx::query(
                        "INSERT INTO tokens (id, tenant_id, secret_hash, label, read_only, created, expires, revoked) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&token.id)
                    .bind(&token.tenant)
                    .bind(&token.secret_hash)
                    .bind(&token.label)
                    .bind(token.read_only)
                    .bind(format_time(token.created))
                    .bind(token.expires.map(format_time))
                    .bind(token.revoked.map(format_time))
                    .execute(&self.pool)
                    .await;
                    match res {
                        Ok(_) => Ok(()),
                        Err(e) if $crate::store::unique_violation(&e).is_some() => {
                            Err($crate::store::StoreError::Uniqueness {
                                detail: format!("token {:?} already exists", token.id),
                            })
                        }
                        Err(e) => Err(e.into()),
                    }
                })
                .await
            }

            async fn token_by_hash(
                &self,
                secret_hash: &str,
            ) -> $crate::store::Result<Option<$crate::store::TokenRecord>> {
                $crate::metrics::timed("token_by_hash", async {
                    let row: Option<$crate::store::row::TokenRow> = sqlx::query_as(
                        "SELECT id, tenant_id, secret_hash, label, read_only, created, expires, revoked \
                         FROM tokens WHERE secret_hash = $1",
                    )
                    .bind(secret_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                })
                .await
            }

            async fn list_tokens(
                &self,
                tenant: Option<&str>,
            ) -> $crate::store::Result<Vec<$crate::store::TokenRecord>> {
                $crate::metrics::timed("list_tokens", async {
                    let rows: Vec<$crate::store::row::TokenRow> = sqlx::query_as(
                        "SELECT id, tenant_id, secret_hash, label, read_only, created, expires, revoked \
                         FROM tokens WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created, id",
                    )
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(TryInto::try_into).collect()
                })
                .await
            }

            async fn has_live_token_with_prefix(&self, prefix: &str) -> $crate::store::Result<bool> {
                let found: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM tokens WHERE substr(id, 1, length($1)) = $1 AND revoked IS NULL LIMIT 1",
                )
                .bind(prefix)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }

            async fn revoke_token(&self, id: &str, at: time::OffsetDateTime) -> $crate::store::Result<bool> {
                $crate::metrics::timed("revoke_token", async {
                    let res = sqlx::query("UPDATE tokens SET revoked = COALESCE(revoked, $2) WHERE id = $1")
                        .bind(id)
                        .bind($crate::store::row::format_time(at))
                        .execute(&self.pool)
                        .await?;
                    Ok(res.rows_affected() > 0)
                })
                .await
            }


            async fn purge_expired(&self, before: time::OffsetDateTime) -> $crate::store::Result<u64> {
                sqlx::query("DELETE FROM assertion_jtis WHERE expires_unix < $1")
                    .bind(before.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                // `expires` is RFC 3339 text of varying length: compared as times, not strings.
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, expires FROM tokens WHERE expires IS NOT NULL",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut purged = 0;
                for (id, expires) in rows {
                    if $crate::store::row::parse_time(&expires)? < before {
                        purged += sqlx::query("DELETE FROM tokens WHERE id = $1")
                            .bind(&id)
                            .execute(&self.pool)
                            .await?
                            .rows_affected();
                    }
                }
                Ok(purged)
            }

            async fn claim_assertion_jti(
                &self,
                issuer: &str,
                jti: &str,
                expires: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO assertion_jtis (issuer, jti, expires_unix) VALUES ($1, $2, $3) \
                     ON CONFLICT (issuer, jti) DO NOTHING",
                )
                .bind(issuer)
                .bind(jti)
                .bind(expires.unix_timestamp())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Resources for $store {
            async fn create(
                &self,
                ctx: &$crate::store::WriteContext,
                rt: &scim_core::schema::ResourceType,
                resource: &scim_core::resource::Resource,
                change: &scim_core::change::Change,
            ) -> $crate::store::Result<()> {
                $crate::metrics::timed("create", async {
                    match self.create_once(ctx, rt, resource, change, false).await {
                        // A remembered chain head was stale (SQLite, another writer of the
                        // file): nothing was written; the second attempt reads the head.
                        Err($crate::store::StoreError::ChainHeadMoved) => {
                            self.create_once(ctx, rt, resource, change, true).await
                        }
                        other => other,
                    }
                })
                .await
            }

            async fn created_by_request(
                &self,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                principal: &str,
                request_id: &str,
            ) -> $crate::store::Result<Option<String>> {
                // Sealed records first, then records awaiting sealing (PostgreSQL: a retry can
                // arrive between its first attempt's commit and the sealing of its record).
                Ok(sqlx::query_scalar(
                    "SELECT c.resource_id FROM (\
                     SELECT resource_id, resource_type, 0 AS pending, tenant_seq AS ord FROM scim_changes \
                     WHERE tenant_id = $1 AND request_id = $2 AND resource_type = $3 \
                     AND principal = $4 AND operation = 'create' \
                     UNION ALL SELECT resource_id, resource_type, 1, id FROM scim_changes_pending \
                     WHERE tenant_id = $1 AND request_id = $2 AND resource_type = $3 \
                     AND principal = $4 AND operation = 'create') c JOIN resources r \
                     ON r.tenant_id = $1 AND r.resource_type = c.resource_type AND r.id = c.resource_id \
                     ORDER BY c.pending, c.ord LIMIT 1",
                )
                .bind(tenant)
                .bind(request_id)
                .bind(&rt.name)
                .bind(principal)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn get(
                &self,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                id: &str,
                load: $crate::store::Load,
            ) -> $crate::store::Result<Option<scim_core::resource::Resource>> {
                $crate::metrics::timed("get", async {
                    // A User's groups come in the same statement (one round trip); a Group's
                    // members, which may be many, in a second one.
                    let groups = load.groups && rt.is_user();
                    use $crate::store::sql::Arg;
                    let row = self
                        .hot_read(
                            &$crate::store::sql::get_statement(self.dialect(), groups),
                            &[Arg::Text(tenant.to_string()), Arg::Text(id.to_string())],
                            $crate::store::row::ResourceRow::from_inline,
                        )
                        .await?
                        .into_iter()
                        .next();
                    // The type is checked here, not in the statement: see `get_statement`.
                    let Some(mut row) = row.filter(|r| r.resource_type == rt.name) else {
                        return Ok(None);
                    };
                    let groups_json = row.groups_json.take();
                    let mut resource = row.into_resource()?;
                    if groups {
                        let list = $crate::store::row::groups_from_json(groups_json.as_deref())?;
                        $crate::store::row::set_list(&mut resource, "groups", list);
                    }
                    if load.members && rt.is_group() {
                        self.load_members(tenant, &mut resource).await?;
                    }
                    Ok(Some(resource))
                })
                .await
            }

            async fn update_successive(
                &self,
                rt: &scim_core::schema::ResourceType,
                resource: &scim_core::resource::Resource,
                expected_version: u64,
                members: Option<&scim_core::patch::MembershipDelta>,
                steps: &[$crate::store::WriteStep<'_>],
            ) -> $crate::store::Result<()> {
                $crate::metrics::timed("update", async {
                    match self
                        .update_once(rt, resource, expected_version, members, steps, false)
                        .await
                    {
                        Err($crate::store::StoreError::ChainHeadMoved) => {
                            self.update_once(rt, resource, expected_version, members, steps, true)
                                .await
                        }
                        other => other,
                    }
                })
                .await
            }

            async fn delete(
                &self,
                ctx: &$crate::store::WriteContext,
                rt: &scim_core::schema::ResourceType,
                id: &str,
                expected_version: Option<u64>,
                change: &scim_core::change::Change,
            ) -> $crate::store::Result<()> {
                $crate::metrics::timed("delete", async {
                    match self.delete_once(ctx, rt, id, expected_version, change, false).await {
                        Err($crate::store::StoreError::ChainHeadMoved) => {
                            self.delete_once(ctx, rt, id, expected_version, change, true).await
                        }
                        other => other,
                    }
                })
                .await
            }

            async fn list(
                &self,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                query: &scim_core::query::ListQuery,
                load: $crate::store::Load,
            ) -> $crate::store::Result<$crate::store::Page> {
                $crate::metrics::timed("list", async {
                    let sql = self.list_sql(tenant, rt, query);
                    // A page of users brings their groups along (one statement).
                    let groups = load.groups && rt.is_user();
                    let mut rows: Vec<$crate::store::row::ResourceRow> = Vec::new();
                    if query.count > 0 {
                        let text = if groups { sql.page_with_groups() } else { sql.page.clone() };
                        rows = self
                            .hot_read(&text, &sql.args, $crate::store::row::ResourceRow::from_inline)
                            .await?;
                    }
                    // A page shorter than asked for, and not empty past the first, ends the
                    // results: its length gives the total without a COUNT (a lookup such as
                    // `userName eq` is then one statement). Otherwise count.
                    let skipped = query.start_index.max(1) - 1;
                    let short = (rows.len() as u64) < query.count;
                    let total = if short && (skipped == 0 || !rows.is_empty()) {
                        skipped + rows.len() as u64
                    } else {
                        let counted: Vec<(i64,)> = self
                            .hot_read(&sql.count, &sql.args[..sql.count_args], |row| {
                                Ok((row.get(0)?,))
                            })
                            .await?;
                        let total = counted.first().map_or(0, |(n,)| *n);
                        u64::try_from(total).unwrap_or_default()
                    };
                    let mut resources = Vec::with_capacity(rows.len());
                    for mut row in rows {
                        let groups_json = row.groups_json.take();
                        let mut resource = row.into_resource()?;
                        if groups {
                            let list =
                                $crate::store::row::groups_from_json(groups_json.as_deref())?;
                            $crate::store::row::set_list(&mut resource, "groups", list);
                        }
                        resources.push(resource);
                    }
                    if load.members && rt.is_group() {
                        self.load_page_members(tenant, &mut resources).await?;
                    }
                    Ok($crate::store::Page { total, resources })
                })
                .await
            }

            async fn find_by_external_id(
                &self,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                external_id: &str,
            ) -> $crate::store::Result<Option<scim_core::resource::Resource>> {
                $crate::metrics::timed("find_by_external_id", async {
                    // The first by id (`externalId` is not unique), chosen here rather than by
                    // `ORDER BY r.id LIMIT 1`: with that clause SQLite's planner walks the
                    // (tenant, type, id) index to skip a sort, reading every resource of the
                    // type (an HR import slowed to tens of rows per second at 10,000 users).
                    // With equality terms only, it searches `resources_external_id`.
                    use $crate::store::sql::Arg;
                    let sql = format!(
                        "SELECT {} FROM resources r WHERE r.tenant_id = $1 AND r.resource_type = $2 \
                         AND r.external_id = $3",
                        self.dialect().resource_columns()
                    );
                    let rows = self
                        .hot_read(
                            &sql,
                            &[
                                Arg::Text(tenant.to_string()),
                                Arg::Text(rt.name.clone()),
                                Arg::Text(external_id.to_string()),
                            ],
                            $crate::store::row::ResourceRow::from_inline,
                        )
                        .await?;
                    rows.into_iter()
                        .min_by(|a, b| a.id.cmp(&b.id))
                        .map(|r| r.into_resource())
                        .transpose()
                })
                .await
            }

            async fn existing_ids(
                &self,
                tenant: &str,
                rt: &scim_core::schema::ResourceType,
                ids: &[String],
            ) -> $crate::store::Result<Vec<String>> {
                $crate::metrics::timed("existing_ids", async {
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    use $crate::store::sql::Arg;
                    let args = [
                        Arg::Text(tenant.to_string()),
                        Arg::Text(rt.name.clone()),
                        Arg::TextArray(ids.to_vec()),
                    ];
                    // One statement for the whole list, each id a primary-key lookup.
                    let found: std::collections::HashSet<String> = self
                        .hot_read(&self.dialect().existing_ids_sql(), &args, |row| {
                            Ok((row.get(0)?,))
                        })
                        .await?
                        .into_iter()
                        .map(|(id,): (String,)| id)
                        .collect();
                    // In the caller's order.
                    Ok(ids.iter().filter(|id| found.contains(*id)).cloned().collect())
                })
                .await
            }

        }

        #[async_trait::async_trait]
        impl $crate::store::ChangeLogStore for $store {
            async fn append_event(
                &self,
                ctx: &$crate::store::WriteContext,
                event: &scim_core::change_log::AuditEvent,
            ) -> $crate::store::Result<u64> {
                $crate::metrics::timed("append_event", self.append_event_own(ctx, event))
                .await
            }

            async fn changes_after(
                &self,
                tenant: &str,
                after: u64,
                limit: u64,
            ) -> $crate::store::Result<Vec<$crate::store::ChangeRecord>> {
                $crate::metrics::timed("changes_after", async {
                    self.seal_pending().await?;
                    self.read_changes(tenant, after, limit).await
                })
                .await
            }

            async fn verify_chain(&self, tenant: &str) -> $crate::store::Result<$crate::store::ChainReport> {
                $crate::metrics::timed("verify_chain", async {
                    self.seal_pending().await?;
                    let mut verifier = $crate::store::chain::Verifier::new(tenant);
                    let mut after = 0;
                    // Writes may go on meanwhile: a head read after the records can be ahead of
                    // them. The records it covers are then read too (a few times at most), so
                    // that only records truly missing are reported as such.
                    let mut catch_up = 0;
                    let head = loop {
                        loop {
                            let batch = self.read_changes(tenant, after, 1000).await?;
                            let Some(last) = batch.last() else { break };
                            after = last.seq;
                            batch.iter().for_each(|r| verifier.push(r));
                        }
                        let head: Option<(i64, String)> = sqlx::query_as(
                            "SELECT last_seq, last_hash FROM tenant_chain WHERE tenant_id = $1",
                        )
                        .bind(tenant)
                        .fetch_optional(&self.pool)
                        .await?;
                        let head = match head {
                            Some((seq, hash)) => Some(($crate::store::row::version_from_db(seq)?, hash)),
                            None => None,
                        };
                        catch_up += 1;
                        match &head {
                            Some((seq, _)) if *seq > after && catch_up < 5 => continue,
                            _ => break head,
                        }
                    };
                    Ok(verifier.finish(head))
                })
                .await
            }

            async fn tenants_with_changes(&self) -> $crate::store::Result<Vec<String>> {
                self.seal_pending().await?;
                let mut ids: Vec<String> = sqlx::query_scalar(
                    "SELECT tenant_id FROM tenant_chain UNION SELECT DISTINCT tenant_id FROM scim_changes \
                     UNION SELECT DISTINCT tenant_id FROM scim_changes_pending",
                )
                .fetch_all(&self.pool)
                .await?;
                ids.sort();
                ids.dedup();
                Ok(ids)
            }

            async fn seal(&self) -> $crate::store::Result<u64> {
                self.sweep_changes().await
            }
        }
    };
}

pub(crate) use impl_sql_store;
