//! Applying a plan step by step; consecutive group adds (or removes) go in one `$batch`.

use rand::Rng;
use rand::seq::SliceRandom;
use reqwest::Method;
use serde_json::{Value, json};

use super::{ApplyReport, StepRecord};
use crate::clock::Clock;
use crate::graph::{GraphClient, GraphError, GraphRequest, OpKind, Outcome, classify};
use crate::plan::{Plan, Step};

/// A random initial password satisfying Entra's complexity rules.
pub(crate) fn random_password() -> String {
    const SETS: [&str; 4] = [
        "ABCDEFGHJKLMNPQRSTUVWXYZ",
        "abcdefghijkmnopqrstuvwxyz",
        "23456789",
        "!#%+-=?@_",
    ];
    let mut rng = rand::thread_rng();
    let mut chars: Vec<char> = SETS
        .iter()
        .map(|s| s.chars().nth(rng.gen_range(0..s.len())).unwrap_or('x'))
        .collect();
    let all: Vec<char> = SETS.concat().chars().collect();
    chars.extend((0..20).map(|_| all[rng.gen_range(0..all.len())]));
    chars.shuffle(&mut rng);
    chars.into_iter().collect()
}

fn target(step: &Step) -> String {
    match step {
        Step::CreateUser {
            user_principal_name,
            ..
        } => user_principal_name.clone(),
        Step::UpdateUser { attributes } => attributes.keys().cloned().collect::<Vec<_>>().join(","),
        Step::SetManager { manager_id } => manager_id.clone(),
        Step::RemoveRole { role, .. } | Step::AddRole { role, .. } => role.clone(),
        Step::AddGroup { group, .. } | Step::RemoveGroup { group, .. } => group.clone(),
        Step::AssignLicenses { add, remove } => format!(
            "+{} -{}",
            add.iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            remove
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
        _ => String::new(),
    }
}

fn request(base: &str, uid: &str, step: &Step) -> Option<(OpKind, GraphRequest)> {
    let obj_ref = |id: &str| json!({"@odata.id": format!("{base}/directoryObjects/{id}")});
    Some(match step {
        Step::CreateUser {
            user_principal_name,
            mail_nickname,
            display_name,
            attributes,
        } => {
            let mut body = json!({
                "accountEnabled": true,
                "displayName": display_name,
                "mailNickname": mail_nickname,
                "userPrincipalName": user_principal_name,
                "passwordProfile": {"password": random_password(), "forceChangePasswordNextSignIn": true},
            });
            for (k, v) in attributes {
                body[k] = v.clone();
            }
            (
                OpKind::CreateUser,
                GraphRequest::with_body(Method::POST, "/users", body),
            )
        }
        Step::UpdateUser { attributes } => (
            OpKind::UpdateUser,
            GraphRequest::with_body(
                Method::PATCH,
                format!("/users/{uid}"),
                Value::Object(attributes.clone().into_iter().collect()),
            ),
        ),
        Step::SetManager { manager_id } => (
            OpKind::SetManager,
            GraphRequest::with_body(
                Method::PUT,
                format!("/users/{uid}/manager/$ref"),
                json!({"@odata.id": format!("{base}/users/{manager_id}")}),
            ),
        ),
        Step::DisableAccount => (
            OpKind::UpdateUser,
            GraphRequest::with_body(
                Method::PATCH,
                format!("/users/{uid}"),
                json!({"accountEnabled": false}),
            ),
        ),
        Step::RevokeSessions => (
            OpKind::RevokeSessions,
            GraphRequest::new(Method::POST, format!("/users/{uid}/revokeSignInSessions")),
        ),
        Step::RemoveRole { assignment_id, .. } => (
            OpKind::RemoveRole,
            GraphRequest::new(
                Method::DELETE,
                format!("/roleManagement/directory/roleAssignments/{assignment_id}"),
            ),
        ),
        Step::AddGroup { group_id, .. } => (
            OpKind::AddMember,
            GraphRequest::with_body(
                Method::POST,
                format!("/groups/{group_id}/members/$ref"),
                obj_ref(uid),
            ),
        ),
        Step::RemoveGroup { group_id, .. } => (
            OpKind::RemoveMember,
            GraphRequest::new(
                Method::DELETE,
                format!("/groups/{group_id}/members/{uid}/$ref"),
            ),
        ),
        Step::AssignLicenses { add, remove } => (
            OpKind::AssignLicense,
            GraphRequest::with_body(
                Method::POST,
                format!("/users/{uid}/assignLicense"),
                json!({
                    "addLicenses": add.iter().map(|l| json!({"skuId": l.sku_id, "disabledPlans": l.disabled_plans})).collect::<Vec<_>>(),
                    "removeLicenses": remove.iter().map(|l| l.sku_id.clone()).collect::<Vec<_>>(),
                }),
            ),
        ),
        Step::AddRole {
            role_definition_id,
            directory_scope_id,
            ..
        } => (
            OpKind::AddRole,
            GraphRequest::with_body(
                Method::POST,
                "/roleManagement/directory/roleAssignments",
                json!({"@odata.type": "#microsoft.graph.unifiedRoleAssignment", "roleDefinitionId": role_definition_id,
                       "principalId": uid, "directoryScopeId": directory_scope_id}),
            ),
        ),
        Step::DeleteUser => (
            OpKind::DeleteUser,
            GraphRequest::new(Method::DELETE, format!("/users/{uid}")),
        ),
    })
}

fn transport_failure(e: &GraphError) -> Outcome {
    match e {
        GraphError::Api {
            status,
            code,
            message,
        } => Outcome::Failed {
            permanent: !e.is_transient(),
            http_status: *status,
            code: code.clone(),
            message: message.clone(),
        },
        other => Outcome::Failed {
            permanent: !other.is_transient(),
            http_status: 0,
            code: "transport".into(),
            message: other.to_string(),
        },
    }
}

/// After a failed create (e.g. it took effect but answered 429, and the retry
/// hit the UPN conflict), finds the user by UPN; adopts it when its
/// `employeeId` agrees with the one being created (or none is being set).
async fn adoptable(
    client: &GraphClient,
    upn: &str,
    attributes: &std::collections::BTreeMap<String, Value>,
) -> Option<Value> {
    let filter = format!("userPrincipalName eq '{}'", upn.replace('\'', "''"));
    let enc: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
    let r = client
        .send(&GraphRequest::get(format!(
            "/users?$filter={enc}&$select=id,employeeId"
        )))
        .await
        .ok()?;
    let user = r.body["value"].as_array()?.first()?.clone();
    match attributes.get("employeeId") {
        Some(want)
            if user
                .get("employeeId")
                .is_some_and(|have| !have.is_null() && have != want) =>
        {
            None
        }
        _ => Some(user),
    }
}

/// Graph's `request-id` response header, if it came.
fn request_id(headers: &std::collections::BTreeMap<String, String>) -> Option<String> {
    headers.get("request-id").cloned()
}

/// Applies `plan`; never returns early on a permanent failure except for a failed create.
/// Each step is recorded with the time its answer arrived (`clock`) and Graph's request id.
pub(crate) async fn apply(client: &GraphClient, plan: &Plan, clock: &dyn Clock) -> ApplyReport {
    let mut report = ApplyReport {
        graph_user_id: plan.graph_user_id.clone(),
        started_at: Some(clock.now()),
        ..ApplyReport::default()
    };
    let base = client.base_url().to_owned();
    let steps = &plan.steps;
    let mut i = 0;
    while i < steps.len() {
        let uid = report.graph_user_id.clone().unwrap_or_default();
        // a run of group adds or removes goes out as one $batch
        let group_run = |s: &Step| {
            matches!(
                (s, &steps[i]),
                (Step::AddGroup { .. }, Step::AddGroup { .. })
                    | (Step::RemoveGroup { .. }, Step::RemoveGroup { .. })
            )
        };
        let mut end = i + 1;
        while end < steps.len() && group_run(&steps[end]) {
            end += 1;
        }
        let batch: Vec<(OpKind, GraphRequest)> = steps[i..end]
            .iter()
            .filter_map(|s| request(&base, &uid, s))
            .collect();
        let outcomes: Vec<(Outcome, Value, Option<String>)> = if batch.len() > 1 {
            let reqs: Vec<GraphRequest> = batch.iter().map(|(_, r)| r.clone()).collect();
            match client.batch(&reqs).await {
                Ok(rs) => rs
                    .iter()
                    .zip(&batch)
                    .map(|(r, (op, _))| {
                        (
                            classify(*op, r.status, &r.body),
                            r.body.clone(),
                            request_id(&r.headers),
                        )
                    })
                    .collect(),
                Err(e) => batch
                    .iter()
                    .map(|_| (transport_failure(&e), Value::Null, None))
                    .collect(),
            }
        } else {
            let (op, req) = &batch[0];
            let mut one = match client.send(req).await {
                Ok(r) => (
                    classify(*op, r.status, &r.body),
                    r.body,
                    request_id(&r.headers),
                ),
                Err(e) => (transport_failure(&e), Value::Null, None),
            };
            if let Step::CreateUser {
                user_principal_name,
                attributes,
                ..
            } = &steps[i]
                && one.0.is_transient()
                && let Some(existing) = adoptable(client, user_principal_name, attributes).await
            {
                one = (Outcome::AlreadyDone { reason: "adopted the existing user with this userPrincipalName (an earlier create took effect)".into() }, existing, one.2);
            }
            vec![one]
        };
        let mut stop = false;
        let answered = clock.now();
        for (k, (outcome, body, request_id)) in outcomes.into_iter().enumerate() {
            let step = &steps[i + k];
            if let (Step::CreateUser { .. }, Outcome::Done | Outcome::AlreadyDone { .. }) =
                (step, &outcome)
            {
                report.graph_user_id = body["id"].as_str().map(str::to_owned);
                if let Some(id) = &report.graph_user_id {
                    client.note_created(id);
                }
            }
            match &outcome {
                Outcome::Failed {
                    permanent: false,
                    message,
                    http_status,
                    ..
                } => {
                    report.transient_failure = Some(format!(
                        "{} ({}): {http_status} {message}",
                        step.label(),
                        target(step)
                    ));
                    stop = true;
                }
                Outcome::Failed {
                    permanent: true, ..
                } => {
                    report.permanent_failures += 1;
                    if matches!(step, Step::CreateUser { .. }) {
                        stop = true;
                    }
                }
                _ => {}
            }
            tracing::debug!(step = step.label(), target = %target(step), ?outcome, "bridge step");
            report.steps.push(StepRecord {
                index: i + k,
                step: step.label().into(),
                target: target(step),
                outcome,
                at: Some(answered),
                request_id,
            });
        }
        if stop {
            break;
        }
        i = end;
    }
    report
}
