//! The bulkUpload body: a SCIM `BulkRequest` (RFC 7644 §3.7 shape) in the form Microsoft Entra's
//! API-driven inbound provisioning accepts. It is not RFC 7644 Bulk: every operation is
//! `POST /Users` (the path in any case: Microsoft's CSV tooling writes `/users`), processed as an
//! upsert on `externalId`, and `failOnErrors` (sent as `null` by Microsoft's samples) has no
//! effect since records are independent.
//!
//! The structure is checked before anything is queued (400 naming the operation or the limit);
//! what a record itself carries (a missing `externalId`, a taken `userName`, a bad value) fails
//! that record alone when it is applied.

use super::queue::NewOperation;
use super::upsert;
use scim_core::bulk::BULK_REQUEST_URN;
use scim_core::{Error, Result};
use serde_json::{Map, Value};

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Checks a bulkUpload body and returns its records in order. At most `max_operations`.
pub fn parse(body: Value, max_operations: usize) -> Result<Vec<NewOperation>> {
    let Value::Object(obj) = body else {
        return Err(Error::invalid_syntax(
            "the body must be a SCIM BulkRequest object",
        ));
    };
    let schemas_ok = field(&obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST_URN))
            })
        });
    if !schemas_ok {
        return Err(Error::invalid_value(format!(
            "`schemas` must be [\"{BULK_REQUEST_URN}\"]"
        )));
    }
    match field(&obj, "failOnErrors") {
        None | Some(Value::Null | Value::Number(_)) => {}
        Some(_) => {
            return Err(Error::invalid_value(
                "`failOnErrors` must be null or a number (records are applied independently)",
            ));
        }
    }
    let ops = match field(&obj, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => {
            return Err(Error::invalid_value(
                "`Operations` is empty: nothing to provision",
            ));
        }
        _ => {
            return Err(Error::invalid_syntax(
                "`Operations` must be an array of POST /Users operations",
            ));
        }
    };
    if ops.len() > max_operations {
        return Err(Error::too_many(format!(
            "{} operations were sent; a bulkUpload request carries at most {max_operations} \
             (send the rest in further requests)",
            ops.len()
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| operation(i, op))
        .collect()
}

fn operation(i: usize, op: &Value) -> Result<NewOperation> {
    let at = |detail: String| format!("Operations[{i}]: {detail}");
    let Value::Object(op) = op else {
        return Err(Error::invalid_syntax(at("must be an object".into())));
    };
    let method = field(op, "method").and_then(Value::as_str).unwrap_or("");
    if !method.eq_ignore_ascii_case("POST") {
        return Err(Error::invalid_value(at(format!(
            "method {method:?} is not accepted: bulkUpload operations are POST /Users upserts \
             (send `active: false` to disable a user)"
        ))));
    }
    let path = field(op, "path").and_then(Value::as_str).unwrap_or("");
    if !path.trim_end_matches('/').eq_ignore_ascii_case("/Users") {
        return Err(Error::invalid_path(at(format!(
            "path {path:?} is not accepted: bulkUpload operations target /Users"
        ))));
    }
    let bulk_id = match field(op, "bulkId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(Error::invalid_value(at("`bulkId` must be a string".into()))),
    };
    let data = match field(op, "data") {
        Some(d @ Value::Object(_)) => d.clone(),
        _ => {
            return Err(Error::invalid_syntax(at(
                "`data` must be the SCIM User to provision".into(),
            )));
        }
    };
    Ok(NewOperation {
        bulk_id,
        external_id: upsert::external_id(&data).ok(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(method: &str, path: &str) -> Value {
        json!({"method": method, "path": path, "bulkId": "b", "data": {"externalId": "1", "userName": "a"}})
    }

    fn body(ops: Vec<Value>) -> Value {
        json!({"schemas": [BULK_REQUEST_URN], "Operations": ops, "failOnErrors": null})
    }

    #[test]
    fn accepted_shapes() {
        let ops = parse(body(vec![op("POST", "/Users"), op("post", "/users/")]), 50).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].external_id.as_deref(), Some("1"));
        assert_eq!(ops[1].bulk_id.as_deref(), Some("b"));
        // a record without externalId is queued; it fails alone when applied
        let ops = parse(
            body(vec![
                json!({"method": "POST", "path": "/Users", "data": {"userName": "x"}}),
            ]),
            50,
        )
        .unwrap();
        assert_eq!(ops[0].external_id, None);
    }

    #[test]
    fn refused_shapes_name_the_problem() {
        // (body, limit, status, words the detail must contain)
        let cases = [
            (json!([]), 50, 400, "BulkRequest"),
            (
                json!({"Operations": [op("POST", "/Users")]}),
                50,
                400,
                "schemas",
            ),
            (body(vec![]), 50, 400, "empty"),
            (body(vec![op("POST", "/Users"); 3]), 2, 400, "at most 2"),
            (
                body(vec![op("POST", "/Users"), op("PATCH", "/Users")]),
                50,
                400,
                "Operations[1]: method \"PATCH\"",
            ),
            (
                body(vec![op("POST", "/Groups")]),
                50,
                400,
                "Operations[0]: path \"/Groups\"",
            ),
            (
                body(vec![json!({"method": "POST", "path": "/Users"})]),
                50,
                400,
                "`data`",
            ),
            (
                json!({"schemas": [BULK_REQUEST_URN], "Operations": [op("POST", "/Users")], "failOnErrors": "yes"}),
                50,
                400,
                "failOnErrors",
            ),
        ];
        for (b, limit, status, words) in cases {
            let e = parse(b.clone(), limit).unwrap_err();
            assert_eq!(e.status(), status, "{b}");
            assert!(e.detail().contains(words), "{b}: {}", e.detail());
        }
    }
}
