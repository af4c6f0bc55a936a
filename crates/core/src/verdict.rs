//! The router's verdict on an agent command: sent once on `sb.router.result.<id>` and kept in
//! the `sb_commands` bucket, so a retried command id is answered with the first verdict at once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the router decided about one command (`command/1`), by the command's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "command-result/1")]
pub struct CommandVerdict {
    /// The command's `id`.
    pub command_id: Uuid,
    /// Why the command was refused; `null` when it applied.
    pub rejected: Option<String>,
}

impl CommandVerdict {
    /// The `sb_commands` key of a command's verdict: the command id.
    pub fn key(command_id: &Uuid) -> String {
        command_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_names_the_refusal_or_null() {
        let id = Uuid::nil();
        let done = serde_json::to_value(CommandVerdict { command_id: id, rejected: None }).unwrap();
        assert_eq!(done, serde_json::json!({ "command_id": id, "rejected": null }));
        let refused: CommandVerdict =
            serde_json::from_value(serde_json::json!({ "command_id": id, "rejected": "unknown conversation" }))
                .unwrap();
        assert_eq!(refused.rejected.as_deref(), Some("unknown conversation"));
    }
}
