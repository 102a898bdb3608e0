//! CSV import and HR events through the real binary, on SQLite and PostgreSQL:
//!
//! - `scim-server import`: a malformed file is refused with a report naming row and column and
//!   writes nothing (with and without `--dry-run`); `--dry-run` of a good file previews without
//!   writing; the import creates every row with one change record each; importing again leaves
//!   every row unchanged (no change record); a changed department updates only that row; a
//!   `userName` another user holds fails that row alone;
//! - `POST /inbound/v1/imports`: a preview, a refused file (400 naming row and column, nothing
//!   queued), an accepted file (202, the job's per-row outcomes), wrong media type and unknown
//!   mapping;
//! - `POST /inbound/v1/events/{tenant}/{source}` with a `[[inbound.sources]]` config file:
//!   signed hire then terminate create then disable the user; a bad signature is 401 and
//!   changes nothing.

use crate::inbound::{Db, Server, TOKEN, outcomes};
use base64::Engine;
use reqwest::StatusCode;
use scim_server::inbound::signature::SigningKey;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;

const MAPPING: &str = r#"
[attributes]
externalId = { from = "Employee ID" }
userName = { from = "Email", transform = ["trim", "lowercase"] }
"name.givenName" = { from = "First" }
"name.familyName" = { from = "Last" }
displayName = { concat = ["First", "Last"] }
'emails[type eq "work"].value' = { from = "Email", transform = ["trim", "lowercase"] }
active = { from = "Active" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "Dept", lookup = "departments" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value" = { from = "Manager ID" }

[lookup.departments]
"100" = "Engineering"
"200" = "Finance"
"#;

const HEADER: &str = "Employee ID,First,Last,Email,Active,Dept,Manager ID\n";

/// `n` employees; every tenth reports to employee 1 (who comes first), row 3 has a quoted comma.
fn employees(n: usize, dept_of: impl Fn(usize) -> &'static str) -> String {
    let mut csv = String::from(HEADER);
    for i in 1..=n {
        let manager = if i > 1 && i % 10 == 0 { "1" } else { "" };
        let first = if i == 2 { "\"Ada, Jr.\"" } else { "Emp" };
        csv.push_str(&format!(
            "{i},{first},Number{i},E{i}@Contoso.example,true,{},{manager}\n",
            dept_of(i)
        ));
    }
    csv
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let f = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        f.write("mapping.toml", MAPPING);
        f
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self.path(name)
    }
}

/// `scim-server import FILE --mapping M --report R [extra]`: (exit code, stdout, stderr, report).
fn import(db: &Db, f: &Files, file: &str, extra: &[&str]) -> (i32, String, String, String) {
    let report = f.path("report.csv");
    let _ = std::fs::remove_file(&report);
    let out = Command::new(env!("CARGO_BIN_EXE_scim-server"))
        .args(["import", file, "--mapping", &f.path("mapping.toml")])
        .args(["--report", &report])
        .args(extra)
        .env_clear()
        .env("SCIM_DATABASE_URL", &db.url)
        .env("SCIM_LOG", "warn")
        .output()
        .expect("running scim-server import");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        std::fs::read_to_string(&report).unwrap_or_default(),
    )
}

/// The report's lines after its header, split into fields (no field here holds a comma).
fn report_lines(report: &str) -> Vec<Vec<String>> {
    let mut r = csv_reader(report);
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::Reader::from_reader(text.as_bytes())
}

fn count(lines: &[Vec<String>], outcome: &str) -> usize {
    lines.iter().filter(|l| l[2] == outcome).count()
}

async fn cli_import(db: &Db) {
    let f = Files::new();
    const N: usize = 300;
    assert_eq!(db.change_records(), 0);

    // Malformed: a department the lookup lacks (row 5), a short row (row 8), no employee id
    // (row 10). Refused before anything is written, with and without --dry-run.
    let mut bad: Vec<String> = employees(12, |_| "100").lines().map(String::from).collect();
    bad[4] = bad[4].replace(",100,", ",999,");
    bad[7] = "7,Short,Row".into();
    bad[9] = bad[9].replacen("9,", ",", 1);
    let bad_file = f.write("bad.csv", &(bad.join("\n") + "\n"));
    let (code, _, stderr, report) = import(db, &f, &bad_file, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(
        stderr.contains("row 5, column \"Dept\": \"999\""),
        "{stderr}"
    );
    assert!(stderr.contains("row 8: has 3 fields"), "{stderr}");
    assert!(
        stderr.contains("row 10, column \"Employee ID\""),
        "{stderr}"
    );
    let lines = report_lines(&report);
    let rows: Vec<&str> = lines.iter().map(|l| l[0].as_str()).collect();
    assert_eq!(rows, ["5", "8", "10"], "{report}");
    assert_eq!(lines[0][3], "Dept");
    assert_eq!(count(&lines, "rejected"), 3);
    let (code, stdout, _, report) = import(db, &f, &bad_file, &["--dry-run"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("dry run: nothing was written"), "{stdout}");
    assert!(stdout.contains("would be created: 9"), "{stdout}");
    assert!(stdout.contains("rejected: 3"), "{stdout}");
    assert_eq!(report_lines(&report).len(), 12, "every row has a line");
    // A header without a mapped column (a `;` file read as `,`): refused at row 1.
    let semi = f.write("semi.csv", &employees(3, |_| "100").replace(',', ";"));
    let (code, _, stderr, _) = import(db, &f, &semi, &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("row 1, column"), "{stderr}");
    assert!(stderr.contains("delimiter"), "{stderr}");
    assert_eq!(db.change_records(), 0, "nothing was written");

    // The same file with `;` and --delimiter: previewed, nothing written.
    let (code, stdout, stderr, report) = import(db, &f, &semi, &["--delimiter", ";", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("would be created: 3"), "{stdout}");
    assert_eq!(count(&report_lines(&report), "created"), 3);
    assert_eq!(db.change_records(), 0);

    // The import: every row created, one change record each; progress as plain lines.
    let good = f.write("good.csv", &employees(N, |_| "100"));
    let (code, stdout, stderr, report) = import(db, &f, &good, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("created: {N}")), "{stdout}");
    assert!(stderr.contains(&format!("{N}/{N} rows")), "{stderr}");
    assert!(stderr.contains("rows/s"), "{stderr}");
    let lines = report_lines(&report);
    assert_eq!(lines.len(), N);
    assert_eq!(count(&lines, "created"), N, "{report}");
    assert_eq!(lines[0][..3], ["2", "1", "created"]);
    assert_eq!(db.change_records(), N as u64);

    // Again: nothing changes, no change record.
    let (code, stdout, _, _) = import(db, &f, &good, &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("unchanged: {N}")), "{stdout}");
    assert_eq!(db.change_records(), N as u64);

    // Three movers and a taken userName: the preview says so and writes nothing, the import
    // does it (the bad row fails alone).
    let moved = employees(N, |i| if [7, 8, 9].contains(&i) { "200" } else { "100" })
        .replace("E20@Contoso.example", "e21@contoso.example");
    let moved = f.write("moved.csv", &moved);
    let (code, stdout, _, report) = import(db, &f, &moved, &["--dry-run"]);
    assert_eq!(code, 1, "a row would fail");
    assert!(stdout.contains("would be updated: 3"), "{stdout}");
    assert!(stdout.contains("would fail: 1"), "{stdout}");
    assert!(
        report.contains("uniqueness") || report.contains("409"),
        "{report}"
    );
    assert_eq!(db.change_records(), N as u64, "a dry run writes nothing");
    let (code, stdout, _, report) = import(db, &f, &moved, &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("updated: 3"), "{stdout}");
    let lines = report_lines(&report);
    let failed: Vec<&Vec<String>> = lines.iter().filter(|l| l[2] == "failed").collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0][..2], ["21", "20"]);
    assert!(failed[0][4].starts_with("409"), "{report}");
    assert_eq!(db.change_records(), N as u64 + 3);
}

fn sources_config(f: &Files, extra: &str) -> String {
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let hr = f.write(
        "hr.toml",
        "[attributes]\nexternalId = { from = \"employeeId\" }\nuserName = { from = \"email\" }\n\"name.familyName\" = { from = \"lastName\" }\n",
    );
    let text = format!(
        "[inbound.mappings]\ncsv = \"{}\"\n\n[[inbound.sources]]\ntenant = \"default\"\nsource = \"workday\"\nsecrets = [\"{secret}\"]\nmapping = \"{hr}\"\n{extra}",
        f.path("mapping.toml")
    );
    f.write("config.toml", &text);
    secret
}

async fn post_csv(
    s: &Server,
    query: &str,
    body: &str,
    media: &str,
) -> (StatusCode, Value, Option<String>) {
    let res = s
        .client
        .post(format!("{}/inbound/v1/imports?{query}", s.root))
        .bearer_auth(TOKEN)
        .header("content-type", media)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body, location)
}

async fn upload_and_events(db: &Db) {
    let f = Files::new();
    let secret = sources_config(&f, "");
    let s = Server::start(db, &[("SCIM_CONFIG", &f.path("config.toml"))]);

    // Preview: nothing written.
    let file = employees(40, |_| "100");
    let (status, preview, _) = post_csv(&s, "mapping=csv&dryRun=true", &file, "text/csv").await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["counts"]["created"], 40, "{preview}");
    assert_eq!(preview["rows"][0]["row"], 2);
    assert_eq!(db.change_records(), 0);

    // Refused: row and column named, nothing queued.
    let bad = file.replace(
        "\n5,Emp,Number5,E5@Contoso.example,true,100,",
        "\n5,Emp,Number5,E5@Contoso.example,true,300,",
    );
    let (status, err, _) = post_csv(&s, "mapping=csv", &bad, "text/csv").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let detail = err["detail"].as_str().unwrap();
    assert!(detail.contains("row 6, column \"Dept\""), "{detail}");
    assert!(detail.contains("nothing was queued"), "{detail}");
    for (query, media, want) in [
        ("mapping=nope", "text/csv", StatusCode::BAD_REQUEST),
        ("", "text/csv", StatusCode::BAD_REQUEST),
        (
            "mapping=csv",
            "application/json",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let (status, err, _) = post_csv(&s, query, &file, media).await;
        assert_eq!(status, want, "{query} {media}: {err}");
        assert!(err["detail"].is_string(), "{err}");
    }
    assert_eq!(db.change_records(), 0);

    // Accepted: a job whose records are the rows.
    let (status, queued, location) =
        post_csv(&s, "mapping=csv", &file, "text/csv; charset=utf-8").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let location = location.unwrap();
    let job = s.finished(&location).await;
    assert_eq!(job["status"], "completed", "{job}");
    // Paged: counts cover every row, the page only its slice.
    let (status, _, page) = s
        .send(
            reqwest::Method::GET,
            &format!("{location}?startIndex=11&count=5"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["counts"]["created"], 40);
    assert_eq!(
        (page["startIndex"].as_u64(), page["itemsPerPage"].as_u64()),
        (Some(11), Some(5))
    );
    assert_eq!(
        page["operations"][0]["bulkId"], "12",
        "row 12 is the 11th record"
    );
    let (status, _, err) = s
        .send(
            reqwest::Method::GET,
            &format!("{location}?count=many"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(job["source"], "csv");
    assert_eq!(job["counts"]["created"], 40);
    assert_eq!(job["operations"][0]["bulkId"], "2");
    assert!(outcomes(&job).iter().all(|o| o == "created"));
    assert_eq!(db.change_records(), 40);
    let ten = s.user("10").await;
    assert_eq!(ten[ENTERPRISE]["manager"]["value"], s.user("1").await["id"]);

    // HR events from the configured source: hire, terminate; a bad signature changes nothing.
    let key = SigningKey::parse(&secret).unwrap();
    let send = |id: &'static str, body: Value, good: bool| {
        let bytes = body.to_string().into_bytes();
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = if good {
            key.sign(id, ts, &bytes)
        } else {
            SigningKey::parse(&format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode([8u8; 32])
            ))
            .unwrap()
            .sign(id, ts, &bytes)
        };
        s.client
            .post(format!("{}/inbound/v1/events/default/workday", s.root))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(bytes)
    };
    let hire = json!({"id": "evt-hire", "type": "hire", "employee": {"employeeId": "W1", "email": "w1@contoso.example", "lastName": "Hopper"}});
    let before = db.change_records();
    let res = send("m-bad", hire.clone(), false).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = s
        .client
        .post(format!("{}/inbound/v1/events/default/workday", s.root))
        .json(&hire)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "unsigned");
    assert_eq!(db.change_records(), before, "refused events change nothing");
    let res = send("m-hire", hire, true).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let reply: Value = res.json().await.unwrap();
    let job = format!(
        "{}/inbound/v1/jobs/{}",
        s.root,
        reply["jobs"][0]["id"].as_str().unwrap()
    );
    s.finished(&job).await;
    let w1 = s.user("W1").await;
    assert_eq!(w1["active"], true);
    assert_eq!(w1["name"]["familyName"], "Hopper");
    let terminate =
        json!({"id": "evt-term", "type": "terminate", "employee": {"employeeId": "W1"}});
    let res = send("m-term", terminate, true).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let reply: Value = res.json().await.unwrap();
    let job = format!(
        "{}/inbound/v1/jobs/{}",
        s.root,
        reply["jobs"][0]["id"].as_str().unwrap()
    );
    s.finished(&job).await;
    assert_eq!(s.user("W1").await["active"], false, "terminated: disabled");
    drop(s);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn sqlite_csv_import_cli() {
    cli_import(&Db::sqlite()).await;
}

#[tokio::test]
async fn postgres_csv_import_cli() {
    cli_import(&Db::postgres().await).await;
}

#[tokio::test]
async fn sqlite_csv_upload_and_signed_events_through_the_binary() {
    upload_and_events(&Db::sqlite()).await;
}

#[tokio::test]
async fn postgres_csv_upload_and_signed_events_through_the_binary() {
    upload_and_events(&Db::postgres().await).await;
}
