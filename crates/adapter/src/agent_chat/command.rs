//! What an agent's text in a chat asks for: a command word after the platform's prefix
//! (`/resolve` on Telegram, `!resolve` on Matrix, `resolve` after Slack's `/sb`), or a reply.

use switchboard_core::{AgentStatus, CommandAction};

/// The command words, for help texts.
pub const COMMANDS: [&str; 10] =
    ["accept", "decline", "resolve", "escalate", "note", "transfer", "t", "online", "away", "offline"];

/// The status a word sets (`online`, `away`, `offline`), if it is one.
pub fn status_for(word: &str) -> Option<AgentStatus> {
    match word {
        "online" => Some(AgentStatus::Online),
        "away" => Some(AgentStatus::Away),
        "offline" => Some(AgentStatus::Offline),
        _ => None,
    }
}

/// What an agent's text asks for: a command when it starts with `prefix` and a known word
/// (`accept`, `decline [why]`, `resolve`, `escalate [note]`, `note <text>`, `transfer <team>
/// [note]`, `t <saved reply>`, `online`/`away`/`offline`), else a reply with the text; or the
/// notice to send back when it is neither.
pub fn action_for(text: &str, prefix: &str) -> Result<CommandAction, String> {
    let text = text.trim();
    let Some(command) = text.strip_prefix(prefix).filter(|_| !prefix.is_empty() || !text.is_empty()) else {
        return match text.is_empty() {
            true => Err("Send text to answer the customer.".into()),
            false => Ok(CommandAction::reply(text)),
        };
    };
    let (word, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
    let rest = rest.trim();
    let note = (!rest.is_empty()).then(|| rest.to_string());
    if let Some(status) = status_for(word) {
        return Ok(CommandAction::SetStatus { status });
    }
    Ok(match word {
        "accept" => CommandAction::Accept,
        "resolve" => CommandAction::Resolve,
        "decline" => CommandAction::Decline { reason: note },
        "escalate" => CommandAction::Escalate { tier: None, note },
        "note" if note.is_some() => CommandAction::Note { text: rest.into() },
        "note" => return Err(format!("{prefix}note needs a text: {prefix}note called the courier")),
        // A saved reply by name; the router fills it in (and refuses an unknown name).
        "t" => match rest.split_whitespace().collect::<Vec<_>>()[..] {
            [name] => {
                CommandAction::Reply { text: String::new(), attachments: Vec::new(), template: Some(name.into()) }
            }
            _ => return Err(format!("{prefix}t needs one saved reply's name: {prefix}t refund-confirmed-en")),
        },
        "transfer" => {
            let (team, note) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if team.is_empty() {
                return Err(format!("{prefix}transfer needs a team: {prefix}transfer billing <note>"));
            }
            let note = (!note.trim().is_empty()).then(|| note.trim().to_string());
            CommandAction::Transfer { to_agent: None, to_team: Some(team.into()), note }
        }
        // Without a prefix every text is a reply; with one, an unknown word is a mistake, not a reply.
        _ if prefix.is_empty() => CommandAction::reply(text),
        w => {
            let known: Vec<String> = COMMANDS.iter().map(|c| format!("{prefix}{c}")).collect();
            return Err(format!("Unknown command {prefix}{w}. Commands: {}", known.join(" ")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_texts_become_commands_with_any_prefix() {
        for p in ["/", "!"] {
            assert_eq!(action_for("Hello there", p), Ok(CommandAction::reply("Hello there")));
            assert_eq!(action_for(&format!("{p}resolve"), p), Ok(CommandAction::Resolve));
            assert_eq!(action_for(&format!("{p}accept"), p), Ok(CommandAction::Accept));
            assert_eq!(action_for(&format!("{p}away"), p), Ok(CommandAction::SetStatus { status: AgentStatus::Away }));
            assert_eq!(
                action_for(&format!("{p}transfer billing refund > 100"), p),
                Ok(CommandAction::Transfer {
                    to_agent: None,
                    to_team: Some("billing".into()),
                    note: Some("refund > 100".into())
                })
            );
            assert_eq!(
                action_for(&format!("{p}note called the courier"), p),
                Ok(CommandAction::Note { text: "called the courier".into() })
            );
            assert!(action_for(&format!("{p}note"), p).unwrap_err().contains("needs a text"));
            assert!(action_for(&format!("{p}transfer"), p).is_err());
            assert_eq!(
                action_for(&format!("{p}t refund-confirmed-en"), p),
                Ok(CommandAction::Reply {
                    text: String::new(),
                    attachments: Vec::new(),
                    template: Some("refund-confirmed-en".into())
                })
            );
            assert!(action_for(&format!("{p}t"), p).unwrap_err().contains("saved reply"));
            assert!(action_for(&format!("{p}t two names"), p).is_err());
            assert!(action_for(&format!("{p}frobnicate"), p).unwrap_err().contains("Unknown command"));
        }
        assert!(action_for("   ", "!").is_err());
    }

    #[test]
    fn without_a_prefix_known_words_are_commands_and_the_rest_replies() {
        // Slack's `/sb <text>`: the words after the slash command.
        assert_eq!(action_for("resolve", ""), Ok(CommandAction::Resolve));
        assert_eq!(
            action_for("note checked the tracking", ""),
            Ok(CommandAction::Note { text: "checked the tracking".into() })
        );
        assert_eq!(action_for("thanks, done", ""), Ok(CommandAction::reply("thanks, done")));
    }
}
