//! Console actions and work-queue pages through the console's router, on SQLite and PostgreSQL:
//! new hire, update, termination and rehire through the write pipeline (errors next to their
//! field, the operator recorded as the writer and in the action log), dated ones through the
//! HR intake's queue on the manual clock; a viewer refused every action; the intake's and the
//! bridge's dead letters inspected and retried; the people list paged by key on an index; a
//! group's members paged.

use crate::console::{Fixture, fixture};
use crate::support::{Raw, TestDb};
use http::StatusCode;
use scim_server::clock::Clock;
use scim_server::console::db::{ListOrder, keyset_sql};
use scim_server::console::roles::Role;
use scim_server::inbound::queue::{NewJob, NewOperation, status};
use scim_server::inbound::worker::Worker;
use serde_json::{Value, json};
use std::sync::Arc;

use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

impl Fixture {
    async fn user(&self, id: &str) -> Value {
        let rt = self.app.registry.resource_type("User").unwrap();
        self.app
            .store
            .get("default", rt, id, Default::default())
            .await
            .unwrap()
            .map(|r| r.to_json(&self.app.registry, None))
            .unwrap_or(Value::Null)
    }

    async fn id_of(&self, user_name: &str) -> String {
        let page = self
            .get(
                &format!("/console/people?q={}", user_name.replace('@', "%40")),
                Some(&self.admin().await.0),
            )
            .await;
        let results = &page.body[page.body.find("id=\"results\"").expect("results")..];
        let at = results
            .find("href=\"/console/people/")
            .expect("a person link")
            + "href=\"/console/people/".len();
        results[at..].split('"').next().unwrap().to_string()
    }

    async fn admin(&self) -> (String, String) {
        self.sign_in(Role::Admin).await
    }

    /// The principals of the person's change records, oldest first.
    async fn writers(&self, id: &str) -> Vec<String> {
        let mut changes = self
            .console
            .db()
            .recent_changes("default", Some(id), None, 100)
            .await
            .unwrap();
        changes.reverse();
        changes
            .into_iter()
            .filter(|c| !c.is_event())
            .map(|c| c.principal)
            .collect()
    }

    /// The console actions recorded as audit events in the person's (or object's) chain, oldest
    /// first: (principal, action, outcome).
    async fn audit_events(&self, id: &str) -> Vec<(String, String, String)> {
        let mut changes = self
            .console
            .db()
            .recent_changes("default", Some(id), None, 100)
            .await
            .unwrap();
        changes.reverse();
        changes
            .into_iter()
            .filter_map(|c| {
                let e = c.event()?;
                let d = e.detail();
                Some((
                    c.principal.clone(),
                    d["action"].as_str()?.to_string(),
                    d["outcome"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    async fn run_intake(&self) -> usize {
        Worker::new(self.app.clone(), self.app.inbound.clone().unwrap())
            .run_until_idle(20)
            .await
            .unwrap()
    }
}

async fn hire_update_terminate_and_rehire_now(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let boss = f.create_user("grace@example.com", "Grace Hopper").await;
    let (cookie, csrf) = f.sign_in(Role::Operator).await;
    let hire = |extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("csrf", csrf.as_str()),
            ("user_name", "ada@example.com"),
            ("given_name", "Ada"),
            ("family_name", "Lovelace"),
            ("email", "ada@example.com"),
            ("employee_id", "E100"),
            ("department", "Engineering"),
            ("manager", "grace@example.com"),
        ];
        pairs.extend_from_slice(extra);
        form(&pairs)
    };
    let page = f.get("/console/people/new", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<label for=\"user_name\">User name</label>")
    );

    let done = f
        .post("/console/people/new", Some(&cookie), &hire(&[]))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("ada@example.com is hired and active."));
    let ada = f.id_of("ada@example.com").await;
    let user = f.user(&ada).await;
    assert_eq!(user["active"], json!(true));
    assert_eq!(user["name"]["formatted"], json!("Ada Lovelace"));
    assert_eq!(user["externalId"], json!("E100"));
    assert_eq!(user[ENTERPRISE]["department"], json!("Engineering"));
    assert_eq!(user[ENTERPRISE]["manager"]["value"], json!(boss));
    assert_eq!(f.writers(&ada).await, vec!["console:sub-operator"]);

    // The same schemas and uniqueness rules as the API, with the error next to its field; the
    // person's input is kept.
    let taken = f
        .post(
            "/console/people/new",
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("user_name", "ADA@example.com"),
                ("family_name", "Lovelace"),
                ("employee_id", "E101"),
            ]),
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(
        taken.body.contains("id=\"user_name-error\""),
        "{}",
        taken.body
    );
    assert!(taken.body.contains("value=\"Lovelace\""));
    for (pairs, field) in [
        (vec![("user_name", "  ")], "user_name"),
        (
            vec![
                ("user_name", "x@example.com"),
                ("manager", "nobody@example.com"),
            ],
            "manager",
        ),
        (
            vec![("user_name", "x@example.com"), ("start", "next week")],
            "start",
        ),
        (
            vec![("user_name", "x@example.com"), ("email", "not-an-address")],
            "email",
        ),
        (
            vec![
                ("user_name", "x@example.com"),
                ("employee_id", ""),
                ("start", "2026-04-01"),
            ],
            "employee_id",
        ),
    ] {
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend(pairs.iter().copied());
        let bad = f
            .post("/console/people/new", Some(&cookie), &form(&all))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            bad.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            bad.body
        );
        assert!(
            bad.body
                .contains(&format!("aria-describedby=\"{field}-hint {field}-error\""))
                || bad
                    .body
                    .contains(&format!("aria-describedby=\"{field}-error\""))
        );
    }
    // Another person with the same employee id would receive this one's HR records.
    let twin = f
        .post(
            "/console/people/new",
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("user_name", "twin@example.com"),
                ("employee_id", "E100"),
            ]),
        )
        .await;
    assert_eq!(twin.status, StatusCode::BAD_REQUEST);
    assert!(
        twin.body.contains("id=\"employee_id-error\""),
        "{}",
        twin.body
    );
    let users = f.get("/console/people", Some(&cookie)).await;
    assert!(
        users.body.contains("Showing 1–2 of 2."),
        "nothing half-written"
    );

    // Mover: the form shows the current values, the manager by user name.
    let edit = f
        .get(&format!("/console/people/{ada}/update"), Some(&cookie))
        .await;
    assert!(
        edit.body.contains("value=\"grace@example.com\""),
        "{}",
        edit.body
    );
    let moved = f
        .post(
            &format!("/console/people/{ada}/update"),
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("title", "Analyst"),
                ("department", "Research"),
                ("manager", ""),
                ("employee_id", "E100"),
            ]),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let user = f.user(&ada).await;
    assert_eq!(user["title"], json!("Analyst"));
    assert_eq!(user[ENTERPRISE]["department"], json!("Research"));
    assert!(user[ENTERPRISE].get("manager").is_none(), "{user}");
    let self_managed = f
        .post(
            &format!("/console/people/{ada}/update"),
            Some(&cookie),
            &form(&[("csrf", &csrf), ("manager", "ada@example.com")]),
        )
        .await;
    assert_eq!(self_managed.status, StatusCode::BAD_REQUEST);
    assert!(self_managed.body.contains("id=\"manager-error\""));

    // Leaver now, then rehire now.
    let person = f
        .get(&format!("/console/people/{ada}"), Some(&cookie))
        .await;
    assert!(
        person
            .body
            .contains(&format!("href=\"/console/people/{ada}/terminate\""))
    );
    let confirm = f
        .get(&format!("/console/people/{ada}/terminate"), Some(&cookie))
        .await;
    assert!(confirm.body.contains("disables the Entra ID account"));
    let left = f
        .post(
            &format!("/console/people/{ada}/terminate"),
            Some(&cookie),
            &form(&[("csrf", &csrf), ("effective", "")]),
        )
        .await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.body);
    assert!(left.body.contains("The person is terminated."));
    assert_eq!(f.user(&ada).await["active"], json!(false));
    let back = f
        .post(
            &format!("/console/people/{ada}/rehire"),
            Some(&cookie),
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(f.user(&ada).await["active"], json!(true));
    assert_eq!(
        f.writers(&ada).await,
        vec!["console:sub-operator"; 4],
        "create, update, terminate, rehire: each one change record naming the operator"
    );
    // The "now" jobs that supersede pending dated ones find nothing left to change.
    f.run_intake().await;
    assert_eq!(f.writers(&ada).await.len(), 4);

    // Each allowed action is also an audit event in the tamper-evident chain, by the operator.
    let op = |a: &str| {
        (
            "console:sub-operator".to_string(),
            a.to_string(),
            "ok".to_string(),
        )
    };
    assert_eq!(
        f.audit_events(&ada).await,
        vec![op("hire"), op("update"), op("terminate"), op("rehire")]
    );
    let chain = f.app.store.verify_chain("default").await.unwrap();
    assert!(chain.problems.is_empty(), "{:?}", chain.problems);

    let actions = f.console.db().recent_actions("default", 100).await.unwrap();
    let log: Vec<(String, String)> = actions
        .iter()
        .rev()
        .filter(|a| a.subject == "sub-operator")
        .map(|a| (a.action.clone(), a.outcome.clone()))
        .collect();
    let pair = |a: &str, o: &str| (a.to_string(), o.to_string());
    assert_eq!(
        log,
        vec![
            pair("hire", "ok"),
            pair("update", "ok"),
            pair("terminate", "ok"),
            pair("rehire", "ok"),
        ],
        "allowed actions are recorded once each (invalid forms write nothing and are not \
         recorded as done)"
    );
    assert!(
        actions
            .iter()
            .all(|a| a.subject != "sub-operator" || a.target == ada || a.action != "update")
    );
}

async fn dated_actions_run_from_the_intake_queue_at_their_date(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let (cookie, csrf) = f.sign_in(Role::Operator).await;
    // The clock is 2026-03-01 09:00 UTC; the start is 2026-03-10.
    let done = f
        .post(
            "/console/people/new",
            Some(&cookie),
            &form(&[
                ("csrf", &csrf),
                ("user_name", "alan@example.com"),
                ("employee_id", "E200"),
                ("start", "2026-03-10"),
            ]),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("activated on 2026-03-10"),
        "{}",
        done.body
    );
    let alan = f.id_of("alan@example.com").await;
    assert_eq!(f.user(&alan).await["active"], json!(false), "a pre-hire");
    assert_eq!(f.run_intake().await, 0, "not due yet");
    let intake = f.get("/console/intake", Some(&cookie)).await;
    assert!(intake.body.contains("scheduled for a later date"));

    f.clock.set(time::macros::datetime!(2026-03-10 00:00 UTC));
    assert_eq!(f.run_intake().await, 1);
    assert_eq!(
        f.user(&alan).await["active"],
        json!(true),
        "active from the start date"
    );
    assert_eq!(
        f.writers(&alan).await,
        vec!["console:sub-operator", "console:sub-operator"],
        "the activation is recorded as the operator's"
    );

    // Nine days on, the session has long timed out: sign in again.
    let (cookie, csrf) = f.sign_in(Role::Operator).await;
    // A termination at a date, then moved to a later date: the later replaces the first.
    for date in ["2026-03-20", "2026-03-25"] {
        let r = f
            .post(
                &format!("/console/people/{alan}/terminate"),
                Some(&cookie),
                &form(&[("csrf", &csrf), ("effective", date)]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body.contains(&format!("terminated on {date}")),
            "{}",
            r.body
        );
    }
    f.clock.set(time::macros::datetime!(2026-03-21 00:00 UTC));
    f.run_intake().await;
    assert_eq!(
        f.user(&alan).await["active"],
        json!(true),
        "the first date was replaced"
    );
    f.clock.set(time::macros::datetime!(2026-03-25 00:00 UTC));
    f.run_intake().await;
    assert_eq!(f.user(&alan).await["active"], json!(false));

    // A person without an employee id cannot have a dated action: said next to the date.
    let (cookie, csrf) = f.sign_in(Role::Operator).await;
    let bob = f.create_user("bob@example.com", "Bob").await;
    let r = f
        .post(
            &format!("/console/people/{bob}/terminate"),
            Some(&cookie),
            &form(&[("csrf", &csrf), ("effective", "2027-01-01")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("id=\"effective-error\"") && r.body.contains("employee id"));
    assert_eq!(f.writers(&bob).await.len(), 1, "nothing written");
}

async fn a_viewer_gets_403_for_every_action(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let ada = f.create_user("ada@example.com", "Ada").await;
    let job = dead_intake_job(&f).await;
    let letter = dead_bridge_work(&f, &ada).await;
    let before = f.user(&ada).await;
    for role in [Role::Viewer] {
        let (cookie, csrf) = f.sign_in(role).await;
        let person = f
            .get(&format!("/console/people/{ada}"), Some(&cookie))
            .await;
        assert!(
            !person.body.contains("/terminate\""),
            "no action buttons for a viewer"
        );
        for (path, body, what) in [
            (
                "/console/people/new".to_string(),
                form(&[("csrf", &csrf), ("user_name", "x@example.com")]),
                "hire people",
            ),
            (
                format!("/console/people/{ada}/update"),
                form(&[("csrf", &csrf), ("title", "x")]),
                "update people",
            ),
            (
                format!("/console/people/{ada}/terminate"),
                form(&[("csrf", &csrf)]),
                "terminate people",
            ),
            (
                format!("/console/people/{ada}/rehire"),
                form(&[("csrf", &csrf)]),
                "rehire people",
            ),
            (
                format!("/console/intake/{job}/retry"),
                form(&[("csrf", &csrf)]),
                "retry intake jobs",
            ),
            (
                format!("/console/bridge/dead-letters/{letter}/retry"),
                form(&[("csrf", &csrf)]),
                "retry Graph bridge work",
            ),
            (
                "/console/admin/tenants".to_string(),
                form(&[("csrf", &csrf), ("id", "sneaky")]),
                "create tenants",
            ),
            // Governance (console_gov.rs): refused before governance is even looked for.
            (
                "/console/reviews/any-review/decisions".to_string(),
                form(&[
                    ("csrf", &csrf),
                    ("item", "i"),
                    ("decision", "keep"),
                    ("justification", "x"),
                ]),
                "decide access reviews",
            ),
            (
                "/console/reviews/any-review/items/any-item".to_string(),
                form(&[
                    ("csrf", &csrf),
                    ("decision", "revoke"),
                    ("justification", "x"),
                ]),
                "decide access reviews",
            ),
            (
                "/console/jit".to_string(),
                form(&[
                    ("csrf", &csrf),
                    ("user", "ada@example.com"),
                    ("grant", "role:helpdesk"),
                ]),
                "request time-bound access",
            ),
            (
                "/console/jit/any-grant/approve".to_string(),
                form(&[("csrf", &csrf)]),
                "approve or deny time-bound access",
            ),
            (
                "/console/jit/any-grant/deny".to_string(),
                form(&[("csrf", &csrf), ("note", "x")]),
                "approve or deny time-bound access",
            ),
        ] {
            let r = f.post(&path, Some(&cookie), &body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            assert!(
                r.body.contains(&format!("the {role} role may not {what}")),
                "{path}: {}",
                r.body
            );
        }
        // The CSV upload's actions post a file (multipart/form-data).
        for (path, what) in [
            ("/console/upload/preview", "preview CSV uploads"),
            ("/console/upload", "upload CSV files"),
        ] {
            let body = crate::console_ops::multipart(
                &[("csrf", &csrf), ("mapping", "hr")],
                Some(b"Employee ID\nE1\n"),
            );
            let r = crate::console_ops::post_multipart(&f, path, &cookie, body, false).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            assert!(
                r.body.contains(&format!("the {role} role may not {what}")),
                "{path}: {}",
                r.body
            );
        }
    }
    // Every campaign with every reviewer's items is the admins' (a page, not an action: refused,
    // not recorded).
    let (cookie, _) = f.sign_in(Role::Viewer).await;
    for path in [
        "/console/reviews/campaigns",
        "/console/reviews/campaigns/any",
    ] {
        let r = f.get(path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            r.body
                .contains("the viewer role may not view review campaigns")
        );
    }
    assert_eq!(f.user(&ada).await, before, "nothing changed");
    let users = f.get("/console/people", Some(&f.admin().await.0)).await;
    assert!(users.body.contains("Showing 1–1 of 1."));
    let queue = f.app.inbound.as_ref().unwrap();
    assert_eq!(
        queue
            .queue
            .job("default", &job)
            .await
            .unwrap()
            .unwrap()
            .status,
        status::DEAD
    );
    assert_eq!(
        f.bridge.dead_letters(Some("default")).await.unwrap().len(),
        1
    );
    let refused: Vec<String> = f
        .console
        .db()
        .recent_actions("default", 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.outcome == "refused")
        .map(|a| a.action)
        .collect();
    assert_eq!(refused.len(), 14, "{refused:?}");
    let viewer = |a: &str| {
        (
            "console:sub-viewer".to_string(),
            a.to_string(),
            "refused".to_string(),
        )
    };
    assert_eq!(
        f.audit_events(&ada).await,
        vec![viewer("update"), viewer("terminate"), viewer("rehire")],
        "refusals are in the chain too"
    );
}

/// An intake job of the default tenant given up as a dead letter; returns its id.
async fn dead_intake_job(f: &Fixture) -> String {
    let intake = f.app.inbound.as_ref().unwrap();
    let now = f.clock.now();
    let job = NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: "default".into(),
        principal: "tok_hr".into(),
        request_id: None,
        source: "bulkUpload".into(),
        operations: vec![NewOperation {
            bulk_id: Some("b1".into()),
            external_id: Some("E9".into()),
            data: json!({"externalId": "E9", "userName": "nine@example.com"}),
        }],
    };
    intake.queue.enqueue(&job, now).await.unwrap();
    let claimed = intake
        .queue
        .claim("test-worker", now, std::time::Duration::from_secs(60), 5)
        .await
        .unwrap()
        .unwrap();
    intake
        .queue
        .bury(
            &claimed.id,
            "test-worker",
            now,
            "record 0: 503 database unavailable",
        )
        .await
        .unwrap();
    job.id
}

/// A bridge dead letter for `user`; returns its id.
async fn dead_bridge_work(f: &Fixture, user: &str) -> String {
    let now = f.clock.now();
    f.bridge.enqueue("default", user, now).await.unwrap();
    let items = f
        .bridge
        .claim("test-worker", now, std::time::Duration::from_secs(60), 10)
        .await
        .unwrap();
    f.bridge
        .dead_letter(
            &items[0],
            "test-worker",
            now,
            "Graph answered 403 Authorization_RequestDenied",
        )
        .await
        .unwrap();
    f.bridge.dead_letters(Some("default")).await.unwrap()[0]
        .id
        .clone()
}

async fn dead_letters_are_inspected_and_retried_after_confirmation(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let ada = f.create_user("ada@example.com", "Ada").await;
    let job = dead_intake_job(&f).await;
    let letter = dead_bridge_work(&f, &ada).await;
    let (cookie, csrf) = f.sign_in(Role::Operator).await;

    let dashboard = f.get("/console", Some(&cookie)).await;
    assert!(
        dashboard.body.contains("intake dead letters"),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("Graph dead letters"));

    let intake = f.get("/console/intake", Some(&cookie)).await;
    assert_eq!(intake.status, StatusCode::OK);
    assert!(intake.body.contains(&format!("/console/intake/{job}")));
    let detail = f
        .get(&format!("/console/intake/{job}"), Some(&cookie))
        .await;
    assert!(detail.body.contains("503 database unavailable") && detail.body.contains("E9"));
    let confirm = f
        .get(&format!("/console/intake/{job}/retry"), Some(&cookie))
        .await;
    assert!(confirm.body.contains("Retry job"));
    // Nothing happens without the confirmation's post (and its CSRF token).
    let queue = &f.app.inbound.as_ref().unwrap().queue;
    assert_eq!(
        queue.job("default", &job).await.unwrap().unwrap().status,
        status::DEAD
    );
    let forged = f
        .post(&format!("/console/intake/{job}/retry"), Some(&cookie), "")
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let retried = f
        .post(
            &format!("/console/intake/{job}/retry"),
            Some(&cookie),
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(
        queue.job("default", &job).await.unwrap().unwrap().status,
        status::QUEUED
    );
    let again = f
        .post(
            &format!("/console/intake/{job}/retry"),
            Some(&cookie),
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "only a dead letter is retried"
    );
    f.run_intake().await;
    let done = queue.job("default", &job).await.unwrap().unwrap();
    assert_eq!(done.status, status::COMPLETED);
    assert_eq!(
        f.get("/console/intake/no-such-job", Some(&cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let bridge = f.get("/console/bridge", Some(&cookie)).await;
    assert!(
        bridge.body.contains("Authorization_RequestDenied"),
        "{}",
        bridge.body
    );
    let confirm = f
        .get(
            &format!("/console/bridge/dead-letters/{letter}/retry"),
            Some(&cookie),
        )
        .await;
    assert!(confirm.body.contains("Retry bridge work"));
    let retried = f
        .post(
            &format!("/console/bridge/dead-letters/{letter}/retry"),
            Some(&cookie),
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert!(
        f.bridge
            .dead_letters(Some("default"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.bridge
            .status(scim_server::bridge::change_log(&f.bridge).as_ref())
            .await
            .unwrap()
            .pending,
        1
    );
    let gone = f
        .post(
            &format!("/console/bridge/dead-letters/{letter}/retry"),
            Some(&cookie),
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let log: Vec<(String, String)> = f
        .console
        .db()
        .recent_actions("default", 10)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|a| (a.action, a.target))
        .collect();
    assert_eq!(
        log,
        vec![
            ("retry_intake_job".to_string(), job.clone()),
            ("retry_bridge_work".to_string(), letter.clone()),
        ]
    );
}

async fn the_people_list_pages_by_key_on_an_index(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    for i in 0..60 {
        f.create_user(&format!("user{i:02}@example.com"), &format!("User {i:02}"))
            .await;
        f.clock.advance(time::Duration::seconds(1));
    }
    let (cookie, _) = f.sign_in(Role::Viewer).await;
    // Follow "Next page" to the end and back: every person once, in order.
    let mut seen = Vec::new();
    let mut path = "/console/people?sort=userName".to_string();
    let mut pages = 0;
    loop {
        let page = f.get(&path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        seen.extend(linked_user_names(&page.body));
        match page
            .body
            .split("href=\"")
            .find(|s| s.contains(">Next page<"))
        {
            Some(next) => path = next.split('"').next().unwrap().replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..60).map(|i| format!("user{i:02}")).collect();
    assert_eq!(seen, expected);
    let last = f.get(&path, Some(&cookie)).await;
    assert!(last.body.contains("Showing 51–60 of 60."), "{}", last.body);
    let prev = last
        .body
        .split("href=\"")
        .find(|s| s.contains(">Previous page<"))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let back = f.get(&prev, Some(&cookie)).await;
    assert!(back.body.contains("Showing 26–50 of 60."), "{}", back.body);
    assert!(
        back.body.contains(">user25@example.com<") && back.body.contains(">user49@example.com<")
    );
    assert!(!back.body.contains(">user50@example.com<"));
    // By last modification, newest first; and the plain search box is a range of the same index.
    let newest = f
        .get(
            "/console/people?sort=meta.lastModified&order=descending",
            Some(&cookie),
        )
        .await;
    assert!(newest.body.find(">user59@").unwrap() < newest.body.find(">user58@").unwrap());
    let found = f.get("/console/people?q=USER1", Some(&cookie)).await;
    assert!(found.body.contains("Showing 1–10 of 10."), "{}", found.body);

    // Each statement walks an index in its order and stops after a page: no sort of the
    // tenant's rows, no scan of the table.
    for order in [ListOrder::Name, ListOrder::LastModified] {
        for descending in [false, true] {
            for after in [false, true] {
                let prefix = order == ListOrder::Name && after;
                let plan = explain(&db, order, descending, prefix, after).await;
                assert!(
                    plan.contains("INDEX") || plan.contains("Index"),
                    "{order:?} desc={descending} after={after}: {plan}"
                );
                for bad in ["TEMP B-TREE", "Sort", "Seq Scan", "SCAN resources\n"] {
                    assert!(
                        !plan.contains(bad),
                        "{order:?} desc={descending} after={after}: {bad} in {plan}"
                    );
                }
            }
        }
    }
}

/// The link texts of the people list's rows (`<a href="/console/people/{id}">user00@…</a>`).
fn linked_user_names(body: &str) -> Vec<String> {
    body.split("<a href=\"/console/people/")
        .skip(1)
        .filter_map(|s| s.split_once("\">"))
        .map(|(_, rest)| rest.split('<').next().unwrap().to_string())
        .filter(|t| t.starts_with("user"))
        .map(|t| t.trim_end_matches("@example.com").to_string())
        .collect()
}

/// The query plan of a keyset statement, with the database told to avoid sorts and table scans
/// where it can (PostgreSQL prefers a scan of a small table; disabled, it still chooses one
/// only when no index can serve the statement).
async fn explain(db: &TestDb, order: ListOrder, desc: bool, prefix: bool, after: bool) -> String {
    let sql = keyset_sql(
        matches!(db.raw, Raw::Postgres(..)),
        order,
        desc,
        prefix,
        after,
    );
    match &db.raw {
        Raw::Sqlite(s, _) => {
            let text = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&text)
                .bind("default")
                .bind("User");
            if prefix {
                q = q.bind("user1").bind("user1\u{10FFFF}");
            }
            match (after, order) {
                (true, ListOrder::Name) => q = q.bind("user10"),
                (true, ListOrder::LastModified) => q = q.bind(0i64).bind("x"),
                _ => {}
            }
            let rows = q.bind(26i64).bind(0i64).fetch_all(s.pool()).await.unwrap();
            rows.into_iter().map(|r| r.3 + "\n").collect()
        }
        Raw::Postgres(s, _, _) => {
            let mut conn = s.pool().acquire().await.unwrap();
            for set in [
                "SET enable_seqscan = off",
                "SET enable_sort = off",
                "SET enable_bitmapscan = off",
            ] {
                sqlx::query(set).execute(&mut *conn).await.unwrap();
            }
            // Literal values: EXPLAIN of a parameterised statement needs them bound.
            let mut text = sql.clone();
            let mut values: Vec<String> = vec!["'default'".into(), "'User'".into()];
            if prefix {
                values.push("'user1'".into());
                values.push("'user2'".into());
            }
            match (after, order) {
                (true, ListOrder::Name) => values.push("'user10'".into()),
                (true, ListOrder::LastModified) => {
                    values.push("0".into());
                    values.push("'x'".into());
                }
                _ => {}
            }
            values.push("26".into());
            values.push("0".into());
            for (i, v) in values.iter().enumerate().rev() {
                text = text.replace(&format!("${}", i + 1), v);
            }
            let explain = format!("EXPLAIN {text}");
            let rows: Vec<(String,)> = sqlx::query_as(&explain)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            for reset in [
                "RESET enable_seqscan",
                "RESET enable_sort",
                "RESET enable_bitmapscan",
            ] {
                sqlx::query(reset).execute(&mut *conn).await.unwrap();
            }
            rows.into_iter().map(|r| r.0 + "\n").collect()
        }
    }
}

async fn a_group_lists_its_members_a_page_at_a_time(db: Arc<TestDb>) {
    let f = fixture(&db).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(
            f.create_user(&format!("m{i:02}@example.com"), &format!("Member {i:02}"))
                .await,
        );
    }
    let ctx = scim_server::test_support::request_ctx(
        scim_server::test_support::principal(
            "default",
            "tok_hr",
            false,
            scim_server::auth::CredentialKind::StaticToken,
        ),
        None,
        "http://localhost/scim/v2",
    );
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let group = scim_server::service::resources::create(
        &f.app,
        &ctx,
        "Group",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone", "members": members}),
        &Default::default(),
    )
    .await
    .unwrap();
    let gid = group.body["id"].as_str().unwrap();
    let (cookie, _) = f.sign_in(Role::Viewer).await;
    // The groups list pages by key too (by display name).
    let list = f.get("/console/groups?q=EVERY", Some(&cookie)).await;
    assert!(list.body.contains("Showing 1–1 of 1."), "{}", list.body);
    assert!(list.body.contains(&format!("/console/groups/{gid}")));
    let first = f
        .get(&format!("/console/groups/{gid}"), Some(&cookie))
        .await;
    assert!(first.body.contains("60 in all"), "{}", first.body);
    assert_eq!(first.body.matches(">Member ").count(), 50);
    let more = first
        .body
        .split("href=\"")
        .find(|s| s.contains(">More members<"))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = f.get(&more, Some(&cookie)).await;
    assert_eq!(second.body.matches(">Member ").count(), 10);
    assert!(!second.body.contains(">More members<"));
    let mut sorted = ids.clone();
    sorted.sort();
    assert!(
        second.body.contains(&sorted[59])
            && !second
                .body
                .contains(&format!("/console/people/{}\"", sorted[0]))
    );
}

crate::support::both!(
    hire_update_terminate_and_rehire_now,
    dated_actions_run_from_the_intake_queue_at_their_date,
    a_viewer_gets_403_for_every_action,
    dead_letters_are_inspected_and_retried_after_confirmation,
    the_people_list_pages_by_key_on_an_index,
    a_group_lists_its_members_a_page_at_a_time,
);
