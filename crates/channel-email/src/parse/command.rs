//! Commands an agent writes on the first line of an email reply.
//!
//! The first non-blank line of the new text may be a command: `#` and a word, case ignored.
//!
//! | line | command | the text below |
//! |---|---|---|
//! | `#accept` | take the offered conversation | a reply to the customer, if any |
//! | `#decline [reason]` | refuse the offer | a reply, if any |
//! | `#resolve` | close the conversation | a reply, if any |
//! | `#transfer <team> [note]` | hand over to a team | a reply, if any |
//! | `#escalate [note]` | move to the next tier | a reply, if any |
//! | `#note [text]` | internal note | part of the note, never sent to the customer |
//!
//! A line starting with `#` and a letter is always read as a command: an unknown word is an
//! error the agent is told about, not text that would reach the customer by mistake.

/// One command from an agent's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEmailCommand {
    /// Take the offered conversation.
    Accept,
    /// Refuse the offered conversation.
    Decline {
        /// Why, for the record.
        reason: Option<String>,
    },
    /// Close the conversation.
    Resolve,
    /// Hand over to another team.
    Transfer {
        /// The team's name.
        team: String,
        /// Note for the next agent.
        note: Option<String>,
    },
    /// Move to the next tier.
    Escalate {
        /// Note for the next tier.
        note: Option<String>,
    },
    /// Add an internal note.
    Note {
        /// The note: the rest of the first line and everything below it.
        text: String,
    },
    /// Send a saved reply (`kind: reply` in the knowledge base) by name (`#t name`).
    Template {
        /// The saved reply's name.
        name: String,
    },
}

/// Why a command line could not be read; the message says it to the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `#word` that is not a command.
    #[error("unknown command #{0}; the commands are {KNOWN}")]
    Unknown(String),
    /// A command without something it needs.
    #[error("#{command} needs {argument}")]
    MissingArgument {
        /// The command.
        command: &'static str,
        /// What is missing.
        argument: &'static str,
    },
}

const KNOWN: &str =
    "#accept, #decline [reason], #resolve, #transfer <team> [note], #escalate [note], #note <text>, #t <saved reply>";

/// Reads the command on the first non-blank line of `new_text`. `Ok(None)`: no command, the whole
/// text is a reply. `Ok(Some((command, rest)))`: `rest` is the text below the command line,
/// trimmed (empty when there is none, and always empty for `#note`, whose text is the note).
pub fn parse_agent_command(new_text: &str) -> Result<Option<(AgentEmailCommand, String)>, CommandError> {
    let text = new_text.trim_start();
    let (line, rest) = text.split_once('\n').unwrap_or((text, ""));
    let line = line.trim();
    let Some(after_hash) = line.strip_prefix('#') else { return Ok(None) };
    if !after_hash.starts_with(|c: char| c.is_alphabetic()) {
        return Ok(None);
    }
    let (word, argument) = after_hash.split_once(char::is_whitespace).unwrap_or((after_hash, ""));
    // Phones put a full stop after a lone word.
    let word = word.trim_end_matches(['.', ',', ':', ';', '!']).to_lowercase();
    let argument = argument.trim();
    let optional = || (!argument.is_empty()).then(|| argument.to_string());
    let rest = rest.trim().to_string();
    let command = match word.as_str() {
        "accept" => AgentEmailCommand::Accept,
        "decline" => AgentEmailCommand::Decline { reason: optional() },
        "resolve" => AgentEmailCommand::Resolve,
        "escalate" => AgentEmailCommand::Escalate { note: optional() },
        "transfer" => {
            let (team, note) = argument.split_once(char::is_whitespace).unwrap_or((argument, ""));
            if team.is_empty() {
                return Err(CommandError::MissingArgument { command: "transfer", argument: "a team" });
            }
            let note = note.trim();
            AgentEmailCommand::Transfer { team: team.to_string(), note: (!note.is_empty()).then(|| note.to_string()) }
        }
        "t" => match argument.split_whitespace().collect::<Vec<_>>()[..] {
            [name] => AgentEmailCommand::Template { name: name.to_string() },
            _ => return Err(CommandError::MissingArgument { command: "t", argument: "one saved reply's name" }),
        },
        "note" => {
            let text = [argument, rest.as_str()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n");
            if text.is_empty() {
                return Err(CommandError::MissingArgument { command: "note", argument: "the note's text" });
            }
            return Ok(Some((AgentEmailCommand::Note { text }, String::new())));
        }
        _ => return Err(CommandError::Unknown(word)),
    };
    Ok(Some((command, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentEmailCommand::*;

    fn check(text: &str, expected: Result<Option<(AgentEmailCommand, &str)>, CommandError>) {
        let expected = expected.map(|o| o.map(|(c, r)| (c, r.to_string())));
        assert_eq!(parse_agent_command(text), expected, "{text:?}");
    }

    #[test]
    fn reads_commands_from_the_first_line() {
        check("#accept", Ok(Some((Accept, ""))));
        check("  \n  #ACCEPT.\n\nHello, I am on it.\n", Ok(Some((Accept, "Hello, I am on it."))));
        check("#decline on holiday", Ok(Some((Decline { reason: Some("on holiday".into()) }, ""))));
        check("#decline", Ok(Some((Decline { reason: None }, ""))));
        check("#Resolve\r\nGlad it works!", Ok(Some((Resolve, "Glad it works!"))));
        check(
            "#transfer billing refund over 500\nPassing you to billing.",
            Ok(Some((
                Transfer { team: "billing".into(), note: Some("refund over 500".into()) },
                "Passing you to billing.",
            ))),
        );
        check("#transfer billing", Ok(Some((Transfer { team: "billing".into(), note: None }, ""))));
        check("#escalate needs a DBA", Ok(Some((Escalate { note: Some("needs a DBA".into()) }, ""))));
        check("#note customer is a VIP\nsee CRM", Ok(Some((Note { text: "customer is a VIP\nsee CRM".into() }, ""))));
        check("#note\nlong note", Ok(Some((Note { text: "long note".into() }, ""))));
    }

    #[test]
    fn plain_text_is_no_command_and_unknown_words_are_errors() {
        check("Hello #accept", Ok(None));
        check("# Heading", Ok(None));
        check("#1 priority", Ok(None));
        check("", Ok(None));
        check("#acept", Err(CommandError::Unknown("acept".into())));
        check("#transfer", Err(CommandError::MissingArgument { command: "transfer", argument: "a team" }));
        check("#note", Err(CommandError::MissingArgument { command: "note", argument: "the note's text" }));
        let message = CommandError::Unknown("acept".into()).to_string();
        assert!(message.starts_with("unknown command #acept; the commands are #accept"), "{message}");
    }
}
