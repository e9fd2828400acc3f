//! The explainer page in a real browser: headless Chromium driven over the DevTools
//! protocol draws a stroke on the canvas, waits for the heatmap, checks the prediction and
//! the audit chart, switches the method, and saves a screenshot.
//!
//! Chromium must be installed (Debian: `apt-get install chromium`; `.ci/run` installs it
//! when missing), or named by `RELPROP_CHROMIUM`. Without it the test fails and says so,
//! unless `RELPROP_SKIP_BROWSER_TEST=1` opts out explicitly. `RELPROP_SCREENSHOT=PATH`
//! also writes the screenshot there (the README's `docs/serve.png`).

mod common;
mod serve_common;

use serde_json::{json, Value};
use serve_common::cdp::{find_chromium, Browser};
use serve_common::{post_json, Server};

/// Non-white pixels of a canvas (its drawn content).
fn inked(browser: &mut Browser, id: &str) -> u64 {
    browser
        .eval(&format!(
            "(() => {{ const c = document.getElementById('{id}');
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               let n = 0;
               for (let i = 0; i < d.length; i += 4)
                 if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) n++;
               return n; }})()"
        ))
        .as_u64()
        .expect("a count")
}

/// How many explanations the page has rendered.
fn explained(browser: &mut Browser) -> u64 {
    browser
        .eval("Number(document.body.dataset.explained || 0)")
        .as_u64()
        .unwrap_or(0)
}

/// Waits until the page has rendered more than `count` explanations and is idle.
fn wait_explained(browser: &mut Browser, count: u64) {
    browser.wait_for(&format!(
        "Number(document.body.dataset.explained || 0) > {count} && !state.busy && !state.pending \
         && document.body.dataset.state === 'idle'"
    ));
}

/// Chromium, or `None` when `RELPROP_SKIP_BROWSER_TEST=1` opts out; without it, a failure
/// saying how to install it.
fn chromium() -> Option<std::path::PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        if std::env::var("RELPROP_SKIP_BROWSER_TEST").is_ok_and(|v| v == "1") {
            eprintln!("RELPROP_SKIP_BROWSER_TEST=1: the browser test is skipped");
            return None;
        }
        panic!(
            "the browser test needs Chromium: install it (Debian: `apt-get install chromium`), \
             or name it with RELPROP_CHROMIUM=/path/to/chromium; RELPROP_SKIP_BROWSER_TEST=1 \
             skips this test"
        );
    }
    found
}

#[test]
fn the_page_explains_a_drawn_digit_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let server = Server::start(&["--model", "lenet5,multidigit"]);
    let profile = common::scratch("chromium-profile");
    let mut browser = Browser::launch(&chromium, profile, 1280, 1150);
    browser.call(
        "Page.navigate",
        json!({"url": format!("{}/", server.url())}),
    );
    // The page starts with a bundled digit, explained at once.
    wait_explained(&mut browser, 0);
    assert_eq!(browser.eval("state.model.name"), json!("lenet5"));

    // Clear, then draw a "7" with the mouse: real input events on the canvas.
    let n = explained(&mut browser);
    browser.eval("document.getElementById('clear').click()");
    wait_explained(&mut browser, n);
    assert_eq!(
        inked(&mut browser, "draw"),
        280 * 280,
        "a cleared canvas is all black"
    );
    let rect: Value = serde_json::from_str(
        browser
            .eval("JSON.stringify(document.getElementById('draw').getBoundingClientRect())")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let (x0, y0) = (rect["x"].as_f64().unwrap(), rect["y"].as_f64().unwrap());
    let (w, h) = (
        rect["width"].as_f64().unwrap(),
        rect["height"].as_f64().unwrap(),
    );
    let n = explained(&mut browser);
    let path = [(0.25, 0.22), (0.75, 0.22), (0.45, 0.85)];
    browser.mouse("mousePressed", x0 + path[0].0 * w, y0 + path[0].1 * h);
    for seg in path.windows(2) {
        for k in 1..=12 {
            let t = k as f64 / 12.0;
            let x = seg[0].0 + t * (seg[1].0 - seg[0].0);
            let y = seg[0].1 + t * (seg[1].1 - seg[0].1);
            browser.mouse("mouseMoved", x0 + x * w, y0 + y * h);
        }
    }
    browser.mouse("mouseReleased", x0 + path[2].0 * w, y0 + path[2].1 * h);
    wait_explained(&mut browser, n);
    assert_eq!(
        browser.eval("state.source === null"),
        json!(true),
        "the drawing is the input"
    );
    let black = inked(&mut browser, "draw");
    assert!(
        black < 280 * 280 - 2000,
        "the stroke is on the canvas ({black} black pixels)"
    );

    // The predicted class shown is the server's class for the drawn input.
    let input: Value = serde_json::from_str(
        browser
            .eval("JSON.stringify(requestInput())")
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut body = input.clone();
    body["model"] = json!("lenet5");
    let (status, predicted) = post_json(server.addr, "/api/predict", &body);
    assert_eq!(status, 200);
    let shown = browser.eval("document.getElementById('predicted').textContent");
    assert!(
        shown
            .as_str()
            .unwrap()
            .starts_with(&format!("predicted: {} (", predicted["predicted"])),
        "{shown} vs {predicted}"
    );
    // Heatmap, the four side-by-side maps and the audit chart are drawn.
    assert!(
        inked(&mut browser, "heatmap") > 20,
        "the heatmap shows relevance"
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#strip canvas').length"),
        json!(4)
    );
    assert_eq!(
        browser.eval("document.getElementById('audit').dataset.rows"),
        json!("12"),
        "lenet5's audit has 12 rows"
    );
    assert!(
        inked(&mut browser, "audit") > 1000,
        "the audit chart is drawn"
    );
    assert!(
        browser
            .eval("Number(document.getElementById('audit').dataset.absorbed)")
            .as_u64()
            .unwrap()
            > 0,
        "LRP's epsilon-plus rules let lenet5's biases absorb relevance, and the chart marks it"
    );

    // Another method: the heatmap changes and names it.
    let before = browser.eval("document.getElementById('heatmap').toDataURL()");
    let n = explained(&mut browser);
    browser.eval(
        "(() => { const s = document.getElementById('method'); s.value = 'sglrp'; \
         s.dispatchEvent(new Event('change')); })()",
    );
    wait_explained(&mut browser, n);
    let title = browser.eval("document.getElementById('heatmap-title').textContent");
    assert!(title.as_str().unwrap().contains("sglrp"), "{title}");
    let after = browser.eval("document.getElementById('heatmap').toDataURL()");
    assert_ne!(before, after, "switching the method redraws the map");

    // A two-digit composite: the 56x56 model takes over, and each digit's class is explained.
    let n = explained(&mut browser);
    browser.eval("document.getElementById('comp-build').click()");
    browser.wait_for("state.labels !== null");
    wait_explained(&mut browser, n);
    assert_eq!(browser.eval("state.model.name"), json!("multidigit"));
    assert_eq!(
        browser.eval("document.getElementById('target').value"),
        json!("both")
    );
    let captions = browser.eval(
        "[...document.querySelectorAll('#strip figcaption')].map((c) => c.textContent).join('|')",
    );
    let captions = captions.as_str().unwrap();
    assert_eq!(captions.matches("class 4").count(), 4, "{captions}");
    assert_eq!(captions.matches("class 7").count(), 4, "{captions}");

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve.png");
    std::fs::write(&shot, &png).unwrap();
    if let Some(path) = std::env::var_os("RELPROP_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }
    println!("screenshot: {}", shot.display());
    assert!(
        browser.page_errors.is_empty(),
        "page errors: {:?}",
        browser.page_errors
    );
}

/// Whether the ImageNet model's weights are in the cache; under CI they must be.
fn have_imagenet_weights() -> bool {
    match relprop::zoo::imagenet::cached_pth() {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI needs the efficientnet_lite0 weights: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

#[test]
fn the_page_explains_a_bundled_photo_in_chromium() {
    if !have_imagenet_weights() {
        return;
    }
    let Some(chromium) = chromium() else {
        return;
    };
    let server = Server::start(&["--model", "lenet5,efficientnet_lite0"]);
    let profile = common::scratch("chromium-profile-photo");
    let mut browser = Browser::launch(&chromium, profile, 1280, 1150);
    browser.call(
        "Page.navigate",
        json!({"url": format!("{}/", server.url())}),
    );
    wait_explained(&mut browser, 0);
    assert_eq!(
        browser.eval("document.getElementById('photo-row').hidden"),
        json!(false),
        "the photo picker is offered with the ImageNet model"
    );
    let n = explained(&mut browser);
    browser.eval(
        "(() => { const s = document.getElementById('photo'); s.value = 'coffee'; \
         s.dispatchEvent(new Event('change')); })()",
    );
    wait_explained(&mut browser, n);
    assert_eq!(
        browser.eval("state.model.name"),
        json!("efficientnet_lite0")
    );
    let shown = browser.eval("document.getElementById('predicted').textContent");
    assert!(
        shown
            .as_str()
            .unwrap()
            .starts_with("predicted: espresso (967)"),
        "{shown}"
    );
    // Five named classes, not 1000 bars.
    let names = browser.eval(
        "[...document.querySelectorAll('#probs > span:nth-child(3n+1)')].map((s) => s.textContent).join('|')",
    );
    let names = names.as_str().unwrap();
    assert_eq!(names.split('|').count(), 5, "{names}");
    assert!(names.starts_with("espresso|"), "{names}");
    // The four side-by-side maps arrive one after another, all of them in the end.
    assert_eq!(
        browser.eval("document.querySelectorAll('#strip figure').length"),
        json!(4)
    );
    assert!(
        inked(&mut browser, "heatmap") > 10_000,
        "the map is drawn over the photo"
    );
    assert!(
        browser.page_errors.is_empty(),
        "page errors: {:?}",
        browser.page_errors
    );
}
