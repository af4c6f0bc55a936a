//! `deploy/nats/`: each node's configuration passes `nats-server -t`, the three nodes form one
//! cluster with `sync_interval: always`, and Switchboard's sample for that cluster keeps every
//! stream on three replicas.

use std::collections::BTreeMap;
use std::process::Command;

use switchboard_testkit::NatsServer;

use super::{check_config, read, repo, run, text};

/// `KEY=VALUE` lines of an environment file (quotes around a value removed).
fn env_file(relative: &str) -> BTreeMap<String, String> {
    read(relative)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{relative}: `{l}` is not KEY=VALUE"));
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

fn nats_test(env: &BTreeMap<String, String>) -> (bool, String) {
    let out = run(Command::new(NatsServer::binary())
        .args(["-t", "-c"])
        .arg(repo().join("deploy/nats/cluster.conf"))
        .env_clear()
        .envs(env));
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn every_node_configuration_passes_nats_server_t_and_they_form_one_cluster() {
    let conf = read("deploy/nats/cluster.conf");
    let lines: Vec<&str> = conf.lines().map(str::trim).collect();
    assert!(lines.contains(&"sync_interval: always"), "fsync before every ack");
    assert!(lines.contains(&"name: switchboard"), "the cluster's name");

    let store = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    let mut routes = Vec::new();
    for n in 1..=3 {
        let mut env = env_file(&format!("deploy/nats/n{n}.env"));
        env.insert("STORE_DIR".into(), store.path().join(format!("n{n}")).display().to_string());
        let (ok, said) = nats_test(&env);
        assert!(ok, "n{n}: nats-server -t refused it: {said}");
        assert!(said.contains("is valid"), "n{n}: {said}");
        names.push(env["NODE_NAME"].clone());
        routes.push(env["ROUTES"].clone());
        let cluster_port = env["CLUSTER_LISTEN"].rsplit(':').next().unwrap().to_string();
        assert_eq!(env["ROUTES"].matches(&format!(":{cluster_port}")).count(), 3, "n{n}: routes to the cluster port");

        // The check is real: without the routes the file does not load.
        env.remove("ROUTES");
        let (ok, said) = nats_test(&env);
        assert!(!ok && said.contains("ROUTES"), "nats-server -t accepted a node without ROUTES: {said}");
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "three distinct server names");
    assert!(routes.windows(2).all(|w| w[0] == w[1]), "every node routes to the same three");
    assert_eq!(routes[0].matches("nats-route://").count(), 3);
}

#[test]
fn switchboards_cluster_sample_passes_check_config_with_three_replicas() {
    let sample = repo().join("deploy/nats/switchboard-cluster.toml");
    check_config(&sample, &[]).expect("switchboard-cluster.toml");
    let config: toml::Table = toml::from_str(&read("deploy/nats/switchboard-cluster.toml")).unwrap();
    assert_eq!(config["nats"]["replicas"].as_integer(), Some(3));
    let urls = config["nats"]["url"].as_str().unwrap();
    assert_eq!(urls.split(',').count(), 3, "the client knows all three nodes: {urls}");
}
