//! The knowledge base end to end on real folders: checking, stemming, ranking, hostile
//! questions, reloading, saved replies, and the shipped evaluation set.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard_kb::{Filter, Kb, Lang, Limits, RenderError, check, detect_language};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn article(id: &str, title: &str, lang: &str, body: &str) -> String {
    format!("---\nid: {id}\ntitle: \"{title}\"\nlanguage: {lang}\n---\n\n{body}\n")
}

fn ids(kb: &Kb, q: &str, lang: Option<Lang>) -> Vec<String> {
    kb.search(q, lang, 5, &Filter::default()).into_iter().map(|h| h.id).collect()
}

#[test]
fn duplicate_ids_name_both_files_and_every_problem_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.md", &article("same", "A", "en", "one"));
    write(dir.path(), "sub/b.md", &article("same", "B", "en", "two"));
    write(dir.path(), "c.md", "---\nid: c\nlanguage: en\n---\nbody\n");
    write(dir.path(), "README.md", "notes for editors, not an article");
    write(dir.path(), "notes.txt", "ignored");
    let problems = check(dir.path()).unwrap_err();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let a = dir.path().join("a.md").display().to_string();
    let b = dir.path().join("sub/b.md").display().to_string();
    let c = dir.path().join("c.md").display().to_string();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown.contains(&format!("{c}:1: missing `title` in the front matter")), "{shown:?}");
    assert!(shown.contains(&format!("{b}:2: duplicate id `same`, also in {a}:2")), "{shown:?}");
}

#[test]
fn limits_refuse_big_files_and_crowded_folders() {
    let dir = tempfile::tempdir().unwrap();
    let big = write(dir.path(), "big.md", &article("big", "Big", "en", &"word ".repeat(1000)));
    write(dir.path(), "small.md", &article("small", "Small", "en", "text"));
    let limits = Limits { max_file_bytes: 1024, max_articles: 10 };
    let problems = Kb::load(dir.path(), limits).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].file, big);
    assert!(problems[0].reason.contains("over the 1024 byte limit"), "{}", problems[0].reason);

    let limits = Limits { max_file_bytes: 1 << 20, max_articles: 1 };
    let problems = Kb::load(dir.path(), limits).unwrap_err();
    assert_eq!(problems[0].file, dir.path());
    assert!(problems[0].reason.contains("more than 1 articles"), "{}", problems[0].reason);
    assert!(Kb::load(&dir.path().join("missing"), limits).unwrap_err()[0].reason.contains("no such folder"));
}

#[test]
fn russian_and_english_words_match_across_their_forms() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "d.md", &article("delivery", "Сроки", "ru", "Доставка занимает три дня."));
    write(dir.path(), "o.md", &article("other", "Прочее", "ru", "Оплата картой на сайте."));
    write(dir.path(), "r.md", &article("refund", "Money back", "en", "We send a refund in five days."));
    write(dir.path(), "x.md", &article("misc", "Other", "en", "Opening hours of the shop."));
    let kb = check(dir.path()).unwrap();
    for q in ["доставки нет", "когда доставку", "ДОСТАВКА"] {
        assert_eq!(ids(&kb, q, None), ["delivery"], "{q}");
    }
    for q in ["refunds", "Refunded?", "refund"] {
        assert_eq!(ids(&kb, q, None), ["refund"], "{q}");
    }
    // A language given explicitly searches only that language's articles.
    assert!(ids(&kb, "refund", Some(Lang::Ru)).is_empty());
}

#[test]
fn a_title_match_outranks_the_same_word_in_a_body() {
    let dir = tempfile::tempdir().unwrap();
    // Same length and the word once each; only its place differs.
    write(dir.path(), "a.md", &article("in-body", "Account settings", "en", "How to reach the invoice page quickly."));
    write(dir.path(), "b.md", &article("in-title", "Invoice page", "en", "How to reach the account settings quickly."));
    let kb = check(dir.path()).unwrap();
    let hits = kb.search("invoice", None, 5, &Filter::default());
    assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["in-title", "in-body"]);
    assert!(hits[0].score > 2.0 * hits[1].score, "{} vs {}", hits[0].score, hits[1].score);
}

#[test]
fn hostile_questions_never_fail_and_stay_bounded() {
    let kb = Kb::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb"), Limits::default()).unwrap();
    let huge = "refund доставка ".repeat(7_000); // ~110 KB
    let many_words: String = (0..20_000).map(|i| format!("w{i} ")).collect();
    let questions = [
        "\" : ( - * ~ ^",
        "title:refund AND (body:\"x",
        "refund~2^10 -delivery +\"",
        "",
        "   \n\t ",
        "🙂🙂🙂 💳❌",
        "\u{0000}\u{202e}refund",
        &huge,
        &many_words,
    ];
    for q in questions {
        let start = Instant::now();
        let hits = kb.search(q, None, 3, &Filter::default());
        assert!(hits.len() <= 3);
        assert!(start.elapsed() < Duration::from_secs(2), "{} chars took {:?}", q.len(), start.elapsed());
    }
    assert_eq!(kb.terms(&many_words, Lang::En).len(), switchboard_kb::MAX_QUERY_TOKENS);
    assert!(kb.search("", None, 3, &Filter::default()).is_empty());
    assert!(kb.search("refund", None, 0, &Filter::default()).is_empty());
}

#[test]
fn language_is_detected_from_the_share_of_cyrillic_letters() {
    assert_eq!(detect_language("где мой заказ"), Lang::Ru);
    assert_eq!(detect_language("заказ 12345 iPhone"), Lang::Ru);
    assert_eq!(detect_language("where is my order"), Lang::En);
    assert_eq!(detect_language("my заказ where is it now please"), Lang::En);
    assert_eq!(detect_language("12345 !!!"), Lang::En);
    assert_eq!(detect_language("zabyl parol"), Lang::En);
}

#[test]
fn filters_keep_team_and_channel_articles_to_their_own() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.md", "---\nid: b2b\ntitle: Invoice\nlanguage: en\nteam: billing\n---\ninvoice\n");
    write(dir.path(), "b.md", "---\nid: tg\ntitle: Invoice bot\nlanguage: en\nchannels: [telegram]\n---\ninvoice\n");
    write(dir.path(), "c.md", &article("all", "Invoice help", "en", "invoice"));
    let kb = check(dir.path()).unwrap();
    let with = |team: Option<&str>, channel: Option<&str>| {
        let filter = Filter { team: team.map(Into::into), channel: channel.map(Into::into) };
        let mut v: Vec<String> = kb.search("invoice", None, 5, &filter).into_iter().map(|h| h.id).collect();
        v.sort();
        v
    };
    assert_eq!(with(None, None), ["all", "b2b", "tg"]);
    assert_eq!(with(Some("sales"), Some("email")), ["all"]);
    assert_eq!(with(Some("billing"), Some("telegram")), ["all", "b2b", "tg"]);
}

#[test]
fn saved_replies_are_looked_up_by_name_not_searched_and_render() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.md", &article("refund-article", "Refund", "en", "refund info"));
    write(
        dir.path(),
        "r.md",
        "---\nid: refund-ok\ntitle: Refund confirmed\nlanguage: en\nkind: reply\n---\nHi {customer.name}, your refund is done. {agent.name}, ref {conversation.code}\n",
    );
    let kb = check(dir.path()).unwrap();
    assert_eq!(ids(&kb, "refund", None), ["refund-article"]);
    assert_eq!(kb.suggest_replies("refund", None, 3, &Filter::default())[0].0.id, "refund-ok");
    let reply = kb.reply("refund-ok").expect("the reply");
    let text = reply.render(&[("customer.name", "Ann"), ("agent.name", "Bo"), ("conversation.code", "K7")]).unwrap();
    assert_eq!(text, "Hi Ann, your refund is done. Bo, ref K7");
    assert_eq!(
        reply.render(&[("agent.name", "Bo")]).unwrap_err(),
        RenderError::Unknown(vec!["customer.name".into(), "conversation.code".into()])
    );
    assert!(kb.reply("refund-article").is_none());
}

#[test]
fn reload_takes_changes_and_keeps_serving_through_a_broken_edit() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.md", &article("a", "Parcel lockers", "en", "lockers"));
    let mut kb = check(dir.path()).unwrap();
    assert_eq!(kb.reload_if_changed(), Ok(false));
    write(dir.path(), "b.md", &article("b", "Gift cards", "en", "gift cards balance"));
    assert_eq!(kb.reload_if_changed(), Ok(true));
    assert_eq!(ids(&kb, "gift card", None), ["b"]);
    // A broken edit (different size, so the stamp changes whatever the clock's resolution).
    std::fs::write(&file, "---\nid: a\n").unwrap();
    let problems = kb.reload_if_changed().unwrap_err();
    assert_eq!(problems[0].file, file);
    assert_eq!(ids(&kb, "lockers", None), ["a"], "the last good state still answers");
    assert_eq!(kb.reload_if_changed(), Ok(false), "the same broken state is reported once");
    std::fs::write(&file, article("a", "Parcel lockers", "en", "lockers and pickup points")).unwrap();
    assert_eq!(kb.reload_if_changed(), Ok(true));
    assert_eq!(ids(&kb, "pickup", None), ["a"]);
}

#[test]
fn the_shipped_folder_checks_and_beats_the_title_baseline() {
    use switchboard_kb::eval;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let kb = check(&root.join("config/kb")).unwrap_or_else(|p| panic!("{p:?}"));
    assert!(kb.articles().count() >= 40 && kb.replies().count() >= 4);
    let questions: Vec<eval::Question> =
        serde_json::from_str(&std::fs::read_to_string(root.join("crates/kb/eval/questions.json")).unwrap()).unwrap();
    assert!(questions.len() >= 150);
    assert!(questions.iter().filter(|q| q.is_none()).count() * 100 >= questions.len() * 15);
    let ids = kb.ids();
    for q in questions.iter().filter(|q| !q.is_none()) {
        assert!(ids.contains(q.expect.as_str()), "unknown label {}", q.expect);
    }
    let ranked = eval::rank_kb(&kb, &questions);
    let base: Vec<_> = questions.iter().map(|q| eval::baseline(&kb, &q.question)).collect();
    let ours = eval::figures(&questions, &ranked, switchboard_kb::DEFAULT_MIN_SCORE);
    let theirs = eval::figures(&questions, &base, 1.0);
    assert!(ours.precision_at_1 > theirs.precision_at_1 + 0.2, "{ours:?} vs {theirs:?}");
    assert!(ours.recall_at_3 > theirs.recall_at_3 + 0.2, "{ours:?} vs {theirs:?}");
    assert!(ours.precision_at_1_min_score > theirs.precision_at_1_min_score, "{ours:?} vs {theirs:?}");
}
