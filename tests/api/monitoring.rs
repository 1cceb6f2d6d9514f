//! The operators' kit in deploy/: `promtool` checks and unit-tests the
//! alert rules (deploy/prometheus), and Debian's Prometheus, started here
//! on a spare port, scrapes a real reelay under traffic and evaluates every
//! query of the Grafana dashboard (deploy/grafana/reelay.json) through its
//! HTTP API: each one parses, and each one whose series the traffic created
//! returns data.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

fn deploy(path: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("deploy").join(path)
}

async fn promtool(args: &[&str]) -> String {
    let out = tokio::process::Command::new("promtool")
        .args(args)
        .output()
        .await
        .expect("promtool runs (scripts/setup --test installs Debian's prometheus)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

/// The alert names in rules.yml.
fn alerts() -> Vec<String> {
    let rules = std::fs::read_to_string(deploy("prometheus/rules.yml")).unwrap();
    rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).map(str::to_owned).collect()
}

#[tokio::test]
async fn alert_rules_pass_promtool_with_a_test_for_each() {
    let rules = deploy("prometheus/rules.yml");
    let config = deploy("prometheus/prometheus.yml");
    let tests = deploy("prometheus/rules_test.yml");
    promtool(&["check", "rules", rules.to_str().unwrap()]).await;
    promtool(&["check", "config", config.to_str().unwrap()]).await;
    let out = promtool(&["test", "rules", tests.to_str().unwrap()]).await;
    assert!(out.contains("SUCCESS"), "{out}");
    let tested = std::fs::read_to_string(&tests).unwrap();
    let readme = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("README.md")).unwrap();
    let names = alerts();
    assert!(names.len() >= 10, "{names:?}");
    let firing = firing_cases(&tested);
    for name in &names {
        assert!(firing.contains(name.as_str()), "{name} has a promtool unit test in which it fires");
        assert!(readme.contains(&format!("`{name}`")), "{name} has a line in the README saying what to do");
    }
}

/// The alerts that some case of a promtool test file expects to fire: an
/// `alertname:` whose `exp_alerts` lists at least one alert (`[]` says it
/// must stay quiet).
fn firing_cases(tests: &str) -> std::collections::BTreeSet<&str> {
    let mut firing = std::collections::BTreeSet::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("- alertname:").map(str::trim) else { continue };
        let case = lines[i + 1..].iter().take_while(|l| !l.starts_with("- alertname:") && !l.starts_with("- name:"));
        let mut after = case.skip_while(|l| !l.starts_with("exp_alerts:"));
        let listed = match after.next() {
            Some(&"exp_alerts:") => after.next().is_some_and(|l| l.starts_with("- exp_labels:")),
            _ => false,
        };
        if listed {
            firing.insert(name);
        }
    }
    firing
}

#[test]
fn a_quiet_case_alone_is_no_firing_case() {
    let quiet = "    alert_rule_test:\n      - alertname: A\n        eval_time: 1m\n        exp_alerts: []\n";
    let fires =
        "      - alertname: B\n        eval_time: 3m\n        exp_alerts:\n          - exp_labels: {severity: page}\n";
    assert_eq!(firing_cases(&format!("{quiet}{fires}")), ["B"].into());
}

/// Metric selectors in a PromQL expression: `name` or `name{…}`.
fn selectors(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &expr[i..];
        let starts = (rest.starts_with("reelay_") || rest.starts_with("process_") || rest.starts_with("up{"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let mut end = name_len;
        if rest[name_len..].starts_with('{') {
            end += rest[name_len..].find('}').unwrap() + 1;
        }
        out.push(rest[..end].to_owned());
        i += end;
    }
    out
}

async fn query(http: &reqwest::Client, prom: &str, path: &str, params: &[(&str, &str)]) -> Value {
    let q: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    http.get(format!("{prom}{path}?{q}")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn every_dashboard_query_runs_on_a_real_prometheus() {
    let app = spawn_app().await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prom_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\nscrape_configs:\n  - job_name: reelay\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
        deploy("prometheus/rules.yml").display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg("--log.level=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus runs (scripts/setup --test installs Debian's prometheus)");
    let prom = format!("http://127.0.0.1:{prom_port}");

    // Traffic that creates the series: lookups (one refused), a relayed
    // file, a merge, a transcode, a manifest, a live stream and its segments.
    let yt = |p: &str| yt_id(p);
    for path in [
        format!("/api/v2/videos/youtube/{}", yt("mon")),
        format!("/api/v2/videos/youtube/{}", yt("removedv")),
        format!("/api/v2/stream/proxy/youtube/{}?quality=360p", yt("mon")),
        format!("/api/v2/stream/proxy/youtube/{}?quality=720p", yt("dashd")),
        format!("/api/v2/stream/proxy/youtube/{}?quality=audio&format=mp3", yt("tunes")),
        format!("/api/v2/stream/manifest/youtube/{}/master.m3u8", yt("dashd")),
        "/api/v2/stream/proxy?url=https://www.twitch.tv/monitorchannel".to_owned(),
    ] {
        let resp = app.follow(&path).await;
        let live = path.contains("twitch");
        let body = resp.bytes().await.unwrap();
        if live {
            // A player: the variant's playlist, then its newest segment.
            let text = String::from_utf8_lossy(&body).into_owned();
            if let Some(seg) = text.lines().rfind(|l| l.starts_with('/')) {
                app.get(seg).await.bytes().await.unwrap();
            }
        }
    }
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Keep the live variant watched and requests flowing while Prometheus scrapes.
        app.follow("/api/v2/stream/proxy?url=https://www.twitch.tv/monitorchannel").await.bytes().await.unwrap();
        let up = "count_over_time(up{job=\"reelay\"}[1m])";
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("query", up).finish();
        if let Ok(r) = http.get(format!("{prom}/api/v1/query?{q}")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["data"]["result"][0]["value"][1].as_str().and_then(|n| n.parse::<f64>().ok()).is_some_and(|n| n >= 8.0)
        {
            ready = true;
            break;
        }
    }
    assert!(ready, "Prometheus scraped reelay");

    let metrics_text = app.get("/metrics").await.text().await.unwrap();
    // What reelay registers (families with no sample yet print nothing).
    let source = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("src/metrics.rs")).unwrap();
    let exported = |name: &str| {
        let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
        name == "up"
            || metrics_text.contains(&format!("# TYPE {} ", name.trim_end_matches("_bucket")))
            || source.contains(&format!("\"{family}\""))
    };
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/reelay.json")).unwrap()).unwrap();
    let mut checked = 0;
    let mut with_data = BTreeSet::new();
    let mut without = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$__rate_interval", "30s").replace("$instance", ".*");
            for sel in selectors(&expr) {
                let name = sel.split('{').next().unwrap();
                assert!(exported(name), "{title}: {name} is not a metric reelay exports");
            }
            let v = query(&http, &prom, "/api/v1/query", &[("query", &expr)]).await;
            assert_eq!(v["status"], "success", "{title}: {expr}: {v}");
            checked += 1;
            // Every selector has series: the query must answer something.
            let mut all_exist = true;
            for sel in selectors(&expr) {
                let s = query(&http, &prom, "/api/v1/series", &[("match[]", sel.as_str())]).await;
                all_exist &= s["data"].as_array().is_some_and(|d| !d.is_empty());
            }
            let has = v["data"]["result"].as_array().is_some_and(|r| !r.is_empty());
            if all_exist {
                assert!(has, "{title}: {expr} returns nothing though its series exist: {v}");
                with_data.insert(title.to_owned());
            } else {
                without.push(title.to_owned());
            }
        }
    }
    assert!(checked >= 30, "{checked} queries");
    // The traffic above reaches most of the board: what it cannot make
    // (disk errors, egress refusals, updates) is listed, and must stay few.
    for must in [
        "Requests by route",
        "Latency by route (p95)",
        "Bytes: from the store, following an origin fetch, and from origins",
        "Store use",
        "Extractions by outcome",
        "Live playlist fetches",
        "Merges, transcodes, muxed segments",
        "yt-dlp",
    ] {
        assert!(with_data.contains(must), "{must} returned data: with {with_data:?}, without {without:?}");
    }
    eprintln!("dashboard: {checked} queries, with data: {with_data:?}; no series yet: {without:?}");
    assert!(without.len() <= 4, "panels without series after the traffic: {without:?}");
    let _ = prometheus.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
