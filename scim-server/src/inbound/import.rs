//! CSV import, the HR intake's universal fallback (issue 10 item 4): a file whose header names
//! the HR fields, one employee per row, mapped to SCIM users by the same mapping file as HR
//! events ([`super::mapping`]) and upserted by `externalId` like bulkUpload
//! ([`super::upsert`]). Used by `scim-server import` ([`super::import_cli`]) and by
//! `POST /inbound/v1/imports` ([`super::http`]).
//!
//! Reading is streamed: [`CsvRows`] holds one record at a time (the `csv` crate's reader over
//! any `Read`), so a 100,000-row file is read in constant memory, and reading it twice (check
//! every row, then write) costs a second pass, not a copy.
//!
//! What a row is checked for, before anything is written (each refusal names its row and
//! column):
//! - the file's shape: every column the mapping reads is in the header; each row has as many
//!   fields as the header; UTF-8 text (HR exports differ in delimiter, byte-order mark and
//!   quoting: the reader takes `,` or `;`, skips a UTF-8 BOM, and follows RFC 4180 quotes, so a
//!   quoted field may hold the delimiter or a line break);
//! - the mapping: a lookup table that lacks the row's value, no employee id;
//! - SCIM values: what `scim-core` normalises every request body with
//!   (`normalize::request_body`: types, canonical names), so `active = maybe` is refused here
//!   rather than when half the file is written.
//!
//! Rows are numbered as a spreadsheet shows them: the header is row 1, the first employee row
//! 2 (a quoted field with a line break does not shift later numbers).

use super::mapping::Mapping;
use super::upsert;
use scim_core::normalize;
use scim_core::schema::{ResourceType, SchemaRegistry};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Read;

/// The header's row number.
pub const HEADER_ROW: u64 = 1;

/// A row (or the header) refused, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    /// The row, counting the header as row 1.
    pub row: u64,
    /// The row's employee id, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    /// The column (HR field) at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong, for a person to fix.
    pub detail: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(column) = &self.column {
            write!(f, ", column {column:?}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// A row that passed every check: its number, employee id and SCIM user.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row, counting the header as row 1.
    pub row: u64,
    /// The employee id (the user's `externalId`).
    pub external_id: String,
    /// The SCIM user the row maps to.
    pub user: Value,
}

/// The delimiter named on the command line or in a query: `,` (the default), `;` (common in
/// European exports), `tab` or `|`.
pub fn delimiter(name: Option<&str>) -> Result<u8, String> {
    match name.unwrap_or(",") {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "tab" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("delimiter {other:?}: use one of `,` `;` `tab` `|`")),
    }
}

/// A CSV file's rows, mapped and checked one at a time.
pub struct CsvRows<'a, R: Read> {
    reader: csv::Reader<R>,
    header: Vec<String>,
    record: csv::StringRecord,
    next_row: u64,
    mapping: &'a Mapping,
    registry: &'a SchemaRegistry,
    users: &'a ResourceType,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CsvRows<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("header", &self.header)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

impl<'a, R: Read> CsvRows<'a, R> {
    /// Reads the header of `input` and checks that it has every column `mapping` reads; the
    /// refusal names the first missing column (and the columns the header has, since a wrong
    /// delimiter shows as one long column).
    pub fn open(
        input: R,
        delimiter: u8,
        mapping: &'a Mapping,
        registry: &'a SchemaRegistry,
        users: &'a ResourceType,
    ) -> Result<Self, RowError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let header_error = |column: Option<String>, detail: String| RowError {
            row: HEADER_ROW,
            employee_id: None,
            column,
            detail,
        };
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| header_error(None, describe(&e)))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // Spreadsheet programs write a UTF-8 byte-order mark before the first name.
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_string()
            })
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(header_error(
                None,
                "the file is empty: the first row must name the columns".into(),
            ));
        }
        for (i, name) in header.iter().enumerate() {
            if header[..i].contains(name) {
                return Err(header_error(
                    Some(name.clone()),
                    "the header names this column twice".into(),
                ));
            }
        }
        for field in mapping.fields() {
            if !header.iter().any(|h| h == field) {
                let shown: Vec<&str> = header.iter().take(12).map(String::as_str).collect();
                return Err(header_error(
                    Some(field.to_string()),
                    format!(
                        "the mapping reads this column, but the header has only {shown:?}{} \
                         (is the delimiter right?)",
                        if header.len() > 12 { " …" } else { "" }
                    ),
                ));
            }
        }
        Ok(Self {
            reader,
            header,
            record: csv::StringRecord::new(),
            next_row: HEADER_ROW + 1,
            mapping,
            registry,
            users,
            done: false,
        })
    }

    /// The header's column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The next row, mapped and checked; `None` at the end of the file. A read error of the
    /// input itself (not of a row's content) ends the rows after it is returned.
    pub fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        if self.done {
            return None;
        }
        let row = self.next_row;
        match self.reader.read_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                self.next_row += 1;
                Some(self.check(row))
            }
            Err(e) => {
                self.next_row += 1;
                let column = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => self.header.get(err.field()).cloned(),
                    csv::ErrorKind::Io(_) => {
                        self.done = true;
                        None
                    }
                    _ => None,
                };
                Some(Err(RowError {
                    row,
                    employee_id: None,
                    column,
                    detail: describe(&e),
                }))
            }
        }
    }

    fn check(&self, row: u64) -> Result<Row, RowError> {
        let record: Map<String, Value> = self
            .header
            .iter()
            .zip(self.record.iter())
            .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
            .collect();
        let refuse =
            |employee_id: Option<String>, column: Option<String>, detail: String| RowError {
                row,
                employee_id,
                column,
                detail,
            };
        let user = self
            .mapping
            .apply_naming_fields(&record)
            .map_err(|e| refuse(None, Some(e.field), e.error.detail().to_string()))?;
        let external_id = upsert::external_id(&user).map_err(|_| {
            refuse(
                None,
                Some(self.mapping.fields_of("externalId").join("+")),
                "empty: the employee id is required (it is the `externalId` rows are matched on)"
                    .into(),
            )
        })?;
        if let Err(e) = normalize::request_body(self.registry, self.users, user.clone()) {
            return Err(refuse(
                Some(external_id),
                self.column_of_bad_value(&user),
                e.detail().to_string(),
            ));
        }
        Ok(Row {
            row,
            external_id,
            user,
        })
    }

    /// The column whose value `normalize` refuses: each top-level attribute of the mapped user
    /// is normalised alone, and the first that fails is traced back to the fields its mapped
    /// paths read.
    fn column_of_bad_value(&self, user: &Value) -> Option<String> {
        let obj = user.as_object()?;
        let (key, _) = obj.iter().find(|(k, v)| {
            let mut alone = Map::new();
            alone.insert((*k).clone(), (*v).clone());
            normalize::request_body(self.registry, self.users, Value::Object(alone)).is_err()
        })?;
        let key = key.to_ascii_lowercase();
        let fields: Vec<&str> = self
            .mapping
            .targets()
            .filter(|(path, _)| {
                let path = path.to_ascii_lowercase();
                path == key
                    || path.starts_with(&format!("{key}."))
                    || path.starts_with(&format!("{key}["))
                    || path.starts_with(&format!("{key}:"))
            })
            .flat_map(|(_, fields)| fields)
            .collect();
        (!fields.is_empty()).then(|| fields.join("+"))
    }
}

/// A `csv` error in words a person can act on (without the crate's byte offsets).
fn describe(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "has {len} fields where the header has {expected_len} (a missing or extra \
             delimiter, or an unclosed quote)"
        ),
        csv::ErrorKind::Utf8 { .. } => {
            "is not UTF-8 text (save the file as UTF-8 from the HR system or spreadsheet)".into()
        }
        csv::ErrorKind::Io(io) => format!("cannot be read: {io}"),
        _ => e.to_string(),
    }
}

/// One line of the per-row report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportLine {
    /// The row, counting the header as row 1.
    pub row: u64,
    /// The employee id, when the row has one.
    pub employee_id: String,
    /// `created`, `updated`, `unchanged` (no write, no change record), `failed` (refused by
    /// the write, e.g. a `userName` another user has) or `rejected` (refused by the checks
    /// before any write).
    pub outcome: String,
    /// The column at fault, for a rejected row.
    pub column: String,
    /// The SCIM error's detail.
    pub error: String,
}

impl ReportLine {
    /// The report line of a rejected row.
    pub fn rejected(e: &RowError) -> Self {
        Self {
            row: e.row,
            employee_id: e.employee_id.clone().unwrap_or_default(),
            outcome: "rejected".into(),
            column: e.column.clone().unwrap_or_default(),
            error: e.detail.clone(),
        }
    }
}

/// Rows per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Rows read (the header not counted).
    pub rows: u64,
    /// New users.
    pub created: u64,
    /// Changed users.
    pub updated: u64,
    /// Users already as the row says.
    pub unchanged: u64,
    /// Rows the write refused.
    pub failed: u64,
    /// Rows the checks refused.
    pub rejected: u64,
}

impl Tally {
    /// Counts one report line.
    pub fn count(&mut self, outcome: &str) {
        self.rows += 1;
        match outcome {
            "created" => self.created += 1,
            "updated" => self.updated += 1,
            "unchanged" => self.unchanged += 1,
            "failed" => self.failed += 1,
            _ => self.rejected += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::USER_RESOURCE;

    const MAPPING: &str = r#"
[attributes]
externalId = { from = "employeeId" }
userName = { from = "email", transform = ["trim", "lowercase"] }
displayName = { concat = ["first", "last"] }
active = { from = "active" }
"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = { from = "dept", lookup = "departments" }

[lookup.departments]
"100" = "Engineering"
"#;

    fn rows(text: &str, delimiter: u8) -> Result<Vec<Result<Row, RowError>>, RowError> {
        let mapping = Mapping::parse(MAPPING).unwrap();
        let registry = SchemaRegistry::builtin();
        let users = registry.resource_type(USER_RESOURCE).unwrap();
        let mut rows = CsvRows::open(text.as_bytes(), delimiter, &mapping, &registry, users)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next_row() {
            out.push(r);
        }
        Ok(out)
    }

    /// A refusal expected: row, column, words of the detail.
    type Refusal = (u64, Option<String>, String);

    fn err(row: u64, column: Option<&str>, words: &str) -> Refusal {
        (row, column.map(str::to_string), words.to_string())
    }

    #[test]
    fn rows_map_and_refusals_name_row_and_column() {
        let header = "employeeId,email,first,last,active,dept\n";
        // (file body after the header, expected per row: Ok(externalId) or (row, column, words))
        let cases: Vec<(&str, Vec<Result<&str, Refusal>>)> = vec![
            ("1,A@X.example,Ada,L,true,100\n", vec![Ok("1")]),
            (
                // quoted delimiter and line break; the next row is still row 3
                "1,a@x.example,\"Ada, Countess\",\"L\nL\",true,100\n2,b@x.example,B,C,,100\n",
                vec![Ok("1"), Ok("2")],
            ),
            (
                "1,a@x.example,A,L,true,999\n",
                vec![Err(err(2, Some("dept"), "\"999\""))],
            ),
            (
                ",a@x.example,A,L,true,100\n",
                vec![Err(err(2, Some("employeeId"), "employee id is required"))],
            ),
            (
                "1,a@x.example,A,L,maybe,100\n",
                vec![Err(err(2, Some("active"), "active"))],
            ),
            (
                "1,a@x.example,A\n2,b@x.example,B,C,true,100\n",
                vec![
                    Err(err(2, None, "has 3 fields where the header has 6")),
                    Ok("2"),
                ],
            ),
        ];
        for (body, want) in cases {
            let got = rows(&format!("{header}{body}"), b',').unwrap();
            assert_eq!(got.len(), want.len(), "{body}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                match (g, w) {
                    (Ok(row), Ok(id)) => assert_eq!(&row.external_id, id, "{body}"),
                    (Err(e), Err((row, column, words))) => {
                        assert_eq!((&e.row, &e.column), (row, column), "{body}: {e}");
                        assert!(e.detail.contains(words.as_str()), "{body}: {e}");
                    }
                    _ => panic!("{body}: got {g:?}, want {w:?}"),
                }
            }
        }
    }

    #[test]
    fn the_header_is_checked_first() {
        // A semicolon file read as commas: one long column; the refusal shows it.
        let e = rows(
            "employeeId;email;first;last;active;dept\n1;a;b;c;d;e\n",
            b',',
        )
        .unwrap_err();
        assert_eq!((e.row, e.column.as_deref()), (1, Some("employeeId")));
        assert!(e.detail.contains("delimiter"), "{e}");
        // The same file with the right delimiter, behind a byte-order mark.
        let ok = rows(
            "\u{feff}employeeId;email;first;last;active;dept\n7;g@x.example;G;H;;100\n",
            b';',
        )
        .unwrap();
        assert_eq!(ok[0].as_ref().unwrap().external_id, "7");
        let e = rows("employeeId,email,email,first,last,active,dept\n", b',').unwrap_err();
        assert_eq!(e.column.as_deref(), Some("email"));
        assert!(rows("", b',').is_err());
    }

    #[test]
    fn delimiters_by_name() {
        assert_eq!(delimiter(None), Ok(b','));
        assert_eq!(delimiter(Some("tab")), Ok(b'\t'));
        assert_eq!(delimiter(Some(";")), Ok(b';'));
        assert!(delimiter(Some("::")).is_err());
    }
}
