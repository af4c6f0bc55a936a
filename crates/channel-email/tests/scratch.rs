use switchboard_channel_email::parse::*;
#[test]
fn deep() {
    for depth in [1000usize, 10_000, 100_000] {
        let mut html = String::new();
        for _ in 0..depth {
            html.push_str("<div>");
        }
        html.push_str("deep");
        let raw = format!("From: a@b.c\r\nContent-Type: text/html\r\n\r\n{html}");
        let t = std::time::Instant::now();
        let m = parse(raw.as_bytes(), &ParseLimits::default());
        println!("depth {depth}: {:?} {:?}", m.map(|m| m.text.len()), t.elapsed());
    }
    let para =
        "<p>Lorem ipsum <b>dolor</b> sit <a href=\"https://x.com/a\">amet</a>, consectetur.</p>\n".repeat(50_000);
    let raw = format!("From: a@b.c\r\nContent-Type: text/html\r\n\r\n{para}");
    let t = std::time::Instant::now();
    let m = parse(raw.as_bytes(), &ParseLimits::default()).unwrap();
    println!("big {} -> {} {:?} {}", raw.len(), m.text.len(), t.elapsed(), m.text_truncated);
}
