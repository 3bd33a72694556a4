//! What the collector stores for one INVOKE: the object key and the JSON body.

use serde::Serialize;

/// The body of one stored object, as the AWS sample's Rust collector writes it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct InvokeRecord<'a> {
    pub deadline_ms: u64,
    pub request_id: &'a str,
    pub invoked_function_arn: &'a str,
}

impl InvokeRecord<'_> {
    /// The JSON body of the object.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of integers and strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The object key: `{function_name}/{unix_ms}.json`.
pub fn object_key(function_name: &str, unix_ms: u128) -> String {
    format!("{function_name}/{unix_ms}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_function_prefix_and_unix_ms() {
        assert_eq!(
            object_key("fn-a", 1_700_000_000_123),
            "fn-a/1700000000123.json"
        );
    }

    #[test]
    fn body_has_the_three_documented_fields() {
        let record = InvokeRecord {
            deadline_ms: 42,
            request_id: "r-1",
            invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f",
        };
        let value: serde_json::Value = serde_json::from_slice(&record.to_json()).expect("json");
        assert_eq!(value["deadline_ms"], 42);
        assert_eq!(value["request_id"], "r-1");
        assert_eq!(
            value["invoked_function_arn"],
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        assert_eq!(value.as_object().map(|o| o.len()), Some(3));
    }
}
