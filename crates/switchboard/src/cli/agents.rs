//! `switchboard agents list|set-status`: the agents as the leading routers see them, and an
//! agent's status changed through the router like any agent command.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_adapter::{Verdict, send_command};
use switchboard_bus::Bus;
use switchboard_core::contract::subjects;
use switchboard_core::{AgentCommand, AgentStatus, CommandAction, Contract};
use switchboard_routing::AgentView;

use super::{EXIT_PENDING, EXIT_PROBLEM, Format, Output, Table, ask_router};

/// How long to wait for a leading router's answer.
const ASK_WAIT: Duration = Duration::from_secs(5);

/// One routing group's agents, or why they could not be had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAgents {
    /// The routing group.
    pub group: String,
    /// Its agents, in id order; empty when the router did not answer.
    pub agents: Vec<AgentView>,
    /// Why there is no answer (no router leading the group).
    pub error: Option<String>,
}

/// Asks the leading router of each group for its agents.
pub async fn list(bus: &Bus, groups: &[String]) -> Vec<GroupAgents> {
    let mut out = Vec::new();
    for group in groups {
        let answer = ask_router::<Vec<AgentView>>(bus, subjects::router_agents(group), group, ASK_WAIT).await;
        out.push(match answer {
            Ok(agents) => GroupAgents { group: group.clone(), agents, error: None },
            Err(e) => GroupAgents { group: group.clone(), agents: Vec::new(), error: Some(format!("{e:#}")) },
        });
    }
    out
}

/// The agents as text: one table across the groups.
pub fn render_list(groups: &[GroupAgents]) -> String {
    let mut t = Table::new(&["group", "agent", "name", "status", "load", "teams", "tiers", "missed"]);
    let mut errors = String::new();
    for g in groups {
        if let Some(e) = &g.error {
            errors += &format!("group {}: {e}\n", g.group);
        }
        for a in &g.agents {
            let status = serde_json::to_value(a.status).ok().and_then(|v| v.as_str().map(str::to_string));
            let tiers: Vec<String> = a.tiers.iter().map(|t| format!("{t:?}")).collect();
            t.row(vec![
                g.group.clone(),
                a.id.clone(),
                a.name.clone().unwrap_or_else(|| "-".into()),
                status.unwrap_or_default(),
                format!("{}/{}", a.load, a.max_total),
                a.teams.join(","),
                tiers.join(","),
                a.missed_offers.to_string(),
            ]);
        }
    }
    let table = if t.is_empty() { "no agents\n".to_string() } else { t.render() };
    table + &errors
}

/// `agents list`: non-zero when a group's router did not answer.
pub fn list_output(groups: &[GroupAgents], format: Format) -> Output {
    let stdout = match format {
        Format::Text => render_list(groups),
        Format::Json => format!("{:#}\n", serde_json::json!({ "groups": groups })),
    };
    Output { stdout, code: if groups.iter().any(|g| g.error.is_some()) { EXIT_PROBLEM } else { 0 } }
}

/// What became of a `set_status` command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStatusResult {
    /// The command's id (its de-duplication id on `sb.agent.in`).
    pub command_id: uuid::Uuid,
    /// The agent.
    pub agent: String,
    /// The status asked for.
    pub status: AgentStatus,
    /// `done`, `rejected`, or `pending` (stored; no router confirmed it in time).
    pub outcome: String,
    /// The router's reason for a rejection.
    pub reason: Option<String>,
}

/// Sends `set_status` for `agent` on `sb.agent.in` and waits up to `wait` for the router's verdict.
pub async fn set_status(
    bus: &Bus,
    agent: &str,
    status: AgentStatus,
    wait: Duration,
) -> anyhow::Result<SetStatusResult> {
    let command = AgentCommand {
        id: uuid::Uuid::now_v7(),
        agent_id: agent.to_string(),
        conversation_id: None,
        issued_at: chrono::Utc::now(),
        action: CommandAction::SetStatus { status },
    };
    command.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let verdict = send_command(bus, &command, wait).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (outcome, reason) = match verdict {
        Verdict::Done => ("done", None),
        Verdict::Rejected(reason) => ("rejected", Some(reason)),
        Verdict::Pending => ("pending", None),
    };
    Ok(SetStatusResult { command_id: command.id, agent: agent.into(), status, outcome: outcome.into(), reason })
}

/// `agents set-status`: 0 when done, [`EXIT_PROBLEM`] when rejected, [`EXIT_PENDING`] when no
/// router confirmed it in time (it is stored and applies when a router leads again).
pub fn set_status_output(r: &SetStatusResult, format: Format) -> Output {
    let stdout = match format {
        Format::Json => format!("{:#}\n", serde_json::to_value(r).expect("a result serialises")),
        Format::Text => {
            let status = serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string));
            let status = status.unwrap_or_default();
            match r.outcome.as_str() {
                "done" => format!("{}: status {status} (command {})\n", r.agent, r.command_id),
                "rejected" => format!("{}: rejected: {}\n", r.agent, r.reason.as_deref().unwrap_or("?")),
                _ => format!(
                    "{}: status {status} stored as command {}, but no router confirmed it yet; it applies when one leads\n",
                    r.agent, r.command_id
                ),
            }
        }
    };
    let code = match r.outcome.as_str() {
        "done" => 0,
        "rejected" => EXIT_PROBLEM,
        _ => EXIT_PENDING,
    };
    Output { stdout, code }
}

/// Parses a status as the contract spells it (`online`, `away`, `offline`).
pub fn parse_status(s: &str) -> Result<AgentStatus, String> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_ascii_lowercase()))
        .map_err(|_| format!("`{s}` is not a status: use online, away or offline"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn statuses_parse_as_the_contract_spells_them() {
        assert_eq!(super::parse_status("away"), Ok(switchboard_core::AgentStatus::Away));
        assert_eq!(super::parse_status("Online"), Ok(switchboard_core::AgentStatus::Online));
        assert!(super::parse_status("available").unwrap_err().contains("online, away or offline"));
    }
}
