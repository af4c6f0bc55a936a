//! What the Telegram channel's test files share: the fake Bot API's token, a channel config
//! pointed at it, and starting the channel on a test bus.

use switchboard_adapter::testkit::{RunningChannel, TestBus};
use switchboard_channel_telegram::{TelegramChannel, TelegramConfig};
use switchboard_testkit::FakeBotApi;

/// The bot token the fake Bot API accepts.
pub const TOKEN: &str = "123456:test-token-for-the-fake-bot-api";

/// A channel config polling `api` every second, its token in a file under `dir`.
pub fn config(api: &FakeBotApi, dir: &std::path::Path) -> TelegramConfig {
    std::fs::write(dir.join("bot.token"), TOKEN).unwrap();
    TelegramConfig {
        enabled: true,
        token_file: Some(dir.join("bot.token")),
        api_url: api.url(),
        poll_timeout_secs: 1,
        ..TelegramConfig::default()
    }
}

/// Runs the channel with `cfg` on the test bus.
pub fn start(t: &TestBus, cfg: &TelegramConfig) -> RunningChannel {
    t.run_channel(TelegramChannel::new(cfg, t.slot()).expect("valid telegram config"), cfg.runtime.clone())
}
