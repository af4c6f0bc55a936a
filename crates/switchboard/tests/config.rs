//! Configuration errors name the file, the key and the reason; the default config loads as is.

use std::path::PathBuf;

use switchboard::{Config, ConfigError};

fn load(toml: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    std::fs::write(&path, toml).unwrap();
    Config::load(&path)
}

/// Expects `toml` to fail on `key` with a reason containing `reason`.
fn check(toml: &str, key: &str, reason: &str) {
    let err = load(toml).unwrap_err();
    assert_eq!(err.key, key, "{err}");
    assert!(err.reason.contains(reason), "reason {:?} should contain {reason:?}", err.reason);
    assert!(err.file.ends_with("switchboard.toml"));
    let text = err.to_string();
    assert!(text.contains("switchboard.toml") && text.contains(key), "{text}");
}

#[test]
fn default_config_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    let demo = &config.channels.webhook.sources["demo"];
    assert_eq!(demo.secret_env.as_deref(), Some("SWITCHBOARD_DEMO_WEBHOOK_SECRET"));
    assert!(demo.outbound_url.is_some());
    let chat = &config.channels.webchat;
    assert!(chat.enabled && chat.demo_page);
    assert!(chat.origin_allowed("http://127.0.0.1:8080"), "the demo page's own origin may open the chat");
}

#[test]
fn errors_name_file_key_and_reason() {
    check("[http]\nlisten = \"nope\"\n", "http.listen", "socket address");
    check("[nats]\nreplicas = 9\n", "nats.replicas", "between 1 and 5");
    check("[nats]\nurll = \"x\"\n", "nats.urll", "unknown field");
    check("[kb]\nenabled = true\n", "kb.path", "must name the knowledge base folder");
    check("[kb]\nenabled = true\npath = \"/nonexistent/kb\"\n", "kb.path", "/nonexistent/kb is not a folder");
    check("[kb]\nmin_score = -1.0\n", "kb.min_score", "0 or more");
    check("[kb]\nmax_articles = 0\n", "kb.max_articles", "greater than 0");
    check("[kb]\npth = \"x\"\n", "kb.pth", "unknown field");
    check("[shutdown]\ngrace_secs = -1\n", "shutdown.grace_secs", "invalid value");
    check("[log]\nformat = \"xml\"\n", "log.format", "unknown variant");
    let routing = "[routing]\ndefault_team = \"s\"\n[routing.teams.s]\n";
    check("[router]\nenabled = true\n", "routing.teams", "at least one team");
    check(
        &format!("{routing}survey = \"stars\"\n"),
        "routing.teams.s.survey",
        "expected one of `csat`, `nps`, `ces`, `none`",
    );
    check(&format!("{routing}[[routing.rules]]\nname = \"r\"\nwhen = \"text.contains(\"\n"), "routing.rules[0]", "`r`");
    check(
        &format!("{routing}[api.tokens.t]\ntoken_env = \"X\"\nagent = \"ghost\"\n"),
        "api.tokens.t.agent",
        "unknown agent",
    );
    check(&format!("{routing}[api.tokens.t]\nagent = \"ghost\"\n"), "api.tokens.t.token_env", "exactly one");
    let matrix = "[channels.matrix]\nenabled = true\nhomeserver = \"https://matrix.example.org\"\n\
                  user_id = \"@switchboard:example.org\"\naccess_token_env = \"SB_MATRIX\"\n";
    check(
        &format!("{routing}{matrix}agents = {{ ghost = \"@ghost:example.org\" }}\n"),
        "channels.matrix.agents.ghost",
        "unknown agent",
    );
    check(
        &format!("{matrix}agents = {{ alice = \"alice@example.org\" }}\n"),
        "channels.matrix.agents.alice",
        "not a Matrix user id",
    );
    check(
        &format!("{routing}{matrix}team_rooms = {{ billing = \"!r:example.org\" }}\n"),
        "channels.matrix.team_rooms.billing",
        "unknown team",
    );
    check(
        &format!("{matrix}team_rooms = {{ s = \"#s:example.org\" }}\n"),
        "channels.matrix.team_rooms.s",
        "not a room id",
    );
    check(
        "[channels.webchat]\nallowed_origins = [\"shop.example.com\"]\n",
        "channels.webchat.allowed_origins[0]",
        "not an origin",
    );
    check("[channels.webchat]\nmax_text_bytes = 0\n", "channels.webchat.max_text_bytes", "between 1 and");
    check("[metrics]\ntoken_env = \"A\"\ntoken_file = \"/b\"\n", "metrics.token_file", "only one");
    check("[metrics]\ntoken_env = \" \"\n", "metrics.token_env", "environment variable");
    let source = "[channels.webhook.sources.s]\nsecret_env = \"S\"\n";
    check(
        &format!("[nats]\nduplicate_window_secs = 599\n{source}"),
        "nats.duplicate_window_secs",
        "at least twice channels.webhook.timestamp_tolerance_secs (600 s)",
    );
    check(
        &format!("[nats]\nduplicate_window_secs = 3600\n[channels.webhook]\ntimestamp_tolerance_secs = 1801\n{source}"),
        "nats.duplicate_window_secs",
        "replayed",
    );
    check("[channels.webchat.topics.\"a b\"]\nen = \"x\"\n", "channels.webchat.topics.a b", "topic ids");
    check(
        "[channels.webhook.sources.shop]\noutbound_url = \"http://x\"\n",
        "channels.webhook.sources.shop.secret_env",
        "set secret_env or secret_file",
    );
    check(
        "[channels.webhook.sources.shop]\nsecret_env = \"X\"\noutbound_url = \"ftp://x\"\n",
        "channels.webhook.sources.shop.outbound_url",
        "http",
    );
    check(
        "[channels.webhook.runtime.backoff]\ninitial_ms = \"soon\"\n",
        "channels.webhook.runtime.backoff.initial_ms",
        "invalid type",
    );
    check("[http\n", "(file)", "TOML parse error");
}

#[test]
fn missing_file_is_named() {
    let err = Config::load(std::path::Path::new("/nonexistent/switchboard.toml")).unwrap_err();
    assert_eq!((err.key.as_str(), err.reason.as_str()), ("(file)", "no such file"));
}

#[test]
fn check_config_exits_non_zero_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[http]\nrequest_timeout_ms = 0\n").unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("http.request_timeout_ms") && stderr.contains("greater than 0"),
        "{stderr}"
    );
}

#[test]
fn router_groups_come_from_the_environment_as_a_list_and_unknown_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.toml");
    let toml = "[routing]\ndefault_team = \"a\"\n[routing.teams.a]\n[routing.teams.b]\n\
                [[routing.groups]]\nname = \"eu\"\nteams = [\"a\"]\nselect = 'channel == \"email\"'\n\
                [[routing.groups]]\nname = \"main\"\nteams = [\"b\"]\n";
    std::fs::write(&path, toml).unwrap();
    let check = |groups: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("check-config")
            .arg(&path)
            .env("SWITCHBOARD__ROUTER__GROUPS", groups)
            .output()
            .unwrap()
    };
    let ok = check("eu,main");
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = check("eu,us");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("router.groups[1]") && stderr.contains("`us` is not one of routing.groups (eu, main)"),
        "{stderr}"
    );
}

#[test]
fn slack_settings_are_checked_against_routing() {
    let routing = "[routing]\ndefault_team = \"support\"\n[routing.teams.support]\n\
                   [[routing.agents]]\nid = \"alice\"\nteams = [\"support\"]\ntiers = [\"L1\"]\n";
    let slack = "[channels.slack]\nenabled = true\nbot_token_env = \"B\"\nsigning_secret_env = \"S\"\n";
    check(
        &format!("{routing}{slack}[channels.slack.agents]\nghost = \"U1\"\n"),
        "channels.slack.agents.ghost",
        "unknown agent",
    );
    check(
        &format!("{routing}{slack}[channels.slack.agents]\nalice = \"alice\"\n"),
        "channels.slack.agents.alice",
        "Slack user id",
    );
    check(
        &format!("{routing}{slack}[channels.slack.team_channels]\nbilling = \"C01\"\n"),
        "channels.slack.team_channels.billing",
        "unknown team",
    );
    check(
        &format!("{routing}[channels.slack]\nenabled = true\nbot_token_env = \"B\"\nmode = \"socket\"\n"),
        "channels.slack.app_token_env",
        "socket",
    );
    check(&format!("{routing}{slack}mode = \"webhook\"\n"), "channels.slack.mode", "unknown variant");
    load(&format!("{routing}{slack}[channels.slack.agents]\nalice = \"U012ABC\"\n[channels.slack.team_channels]\nsupport = \"C0123\"\n"))
        .unwrap();
}

#[test]
fn whatsapp_settings_name_their_key() {
    let wa = "[channels.whatsapp]\nenabled = true\naccess_token_env = \"T\"\napp_secret_env = \"S\"\nverify_token_env = \"V\"\n";
    check(wa, "channels.whatsapp.phone_number_id", "numeric id");
    check(&format!("{wa}phone_number_id = \"1065\"\napi_version = \"21\"\n"), "channels.whatsapp.api_version", "v21.0");
    check(
        "[channels.whatsapp]\nenabled = true\nphone_number_id = \"1065\"\naccess_token_env = \"T\"\nverify_token_env = \"V\"\n",
        "channels.whatsapp.app_secret_env",
        "exactly one",
    );
    check(
        &format!(
            "{wa}phone_number_id = \"1065\"\nreengage_template = {{ name = \"Hi there\", language = \"en_US\" }}\n"
        ),
        "channels.whatsapp.reengage_template.name",
        "template name",
    );
    check(
        &format!("{wa}phone_number_id = \"1065\"\nwindow_hours = 24\n"),
        "channels.whatsapp.window_hours",
        "unknown field",
    );
    let routing = "[routing]\ndefault_team = \"support\"\n[routing.teams.support]\n";
    load(&format!(
        "{routing}{wa}phone_number_id = \"1065\"\nreengage_template = {{ name = \"reengage\", language = \"en_US\" }}\n"
    ))
    .unwrap();
}
