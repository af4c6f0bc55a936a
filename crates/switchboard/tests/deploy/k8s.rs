//! `deploy/k8s/`: every manifest parses; probes point at the daemon's health endpoints on the
//! port the ConfigMap's configuration listens on; images are pinned to the workspace version;
//! pods run non-root with a read-only root and no capabilities; every secret variable comes from
//! the Secret; the configuration passes `check-config` as each role sees it; and the router and
//! ingress roles, started from that configuration against a real NATS, pass their probes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use switchboard_channel_webhook::signature;
use switchboard_testkit::{NatsServer, free_port, wait_until};

use super::{Running, check_config, http_status, read, repo};

/// Every document of every manifest file, with the file it came from.
fn manifests() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = read(&format!("deploy/k8s/{file}"));
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|(_, d)| d["kind"] == kind).map(|(_, d)| d).collect()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().expect("metadata.name")
}

/// The one container of a Deployment's pods.
fn container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{}: one container", name(deployment));
    &containers[0]
}

/// Environment variables as (name, value) pairs.
type Vars = Vec<(String, String)>;

/// A Deployment's literal variables, and the secret variables with the Secret key they read.
fn env_of(deployment: &Value) -> (Vars, Vars) {
    let (mut literal, mut secret) = (Vec::new(), Vec::new());
    for var in container(deployment)["env"].as_array().into_iter().flatten() {
        let key = var["name"].as_str().unwrap().to_string();
        if let Some(value) = var["value"].as_str() {
            literal.push((key, value.to_string()));
        } else {
            let reference = &var["valueFrom"]["secretKeyRef"];
            assert_eq!(reference["name"], "switchboard-secrets", "{key}: secrets come from switchboard-secrets");
            secret.push((key, reference["key"].as_str().expect("secretKeyRef.key").to_string()));
        }
    }
    (literal, secret)
}

/// Every value under a key ending in `_env` anywhere in the configuration.
fn named_variables(value: &toml::Value, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match v {
                    toml::Value::String(s) if k.ends_with("_env") => {
                        out.insert(s.clone());
                    }
                    other => named_variables(other, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| named_variables(v, out)),
        _ => {}
    }
}

struct Setup {
    docs: Vec<(String, Value)>,
    config_text: String,
    config: toml::Table,
    secret_keys: BTreeSet<String>,
}

fn setup() -> Setup {
    let docs = manifests();
    let config_maps = of_kind(&docs, "ConfigMap");
    assert_eq!(config_maps.len(), 1);
    let config_text = config_maps[0]["data"]["switchboard.toml"].as_str().expect("data.switchboard.toml").to_string();
    let config: toml::Table = toml::from_str(&config_text).expect("the ConfigMap's TOML parses");
    let secrets = of_kind(&docs, "Secret");
    assert_eq!(secrets.len(), 1);
    assert_eq!(name(secrets[0]), "switchboard-secrets");
    let secret_keys = secrets[0]["stringData"].as_object().expect("stringData").keys().cloned().collect();
    Setup { docs, config_text, config, secret_keys }
}

fn port_of(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().expect("a port")
}

#[test]
fn the_manifests_are_namespace_agnostic_and_all_in_the_kustomization() {
    let Setup { docs, .. } = setup();
    let kustomization = docs.iter().find(|(f, _)| f == "kustomization.yaml").map(|(_, d)| d).expect("kustomization");
    let listed: BTreeSet<&str> =
        kustomization["resources"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    let files: BTreeSet<&str> = docs.iter().map(|(f, _)| f.as_str()).filter(|f| *f != "kustomization.yaml").collect();
    assert_eq!(listed, files, "every manifest file is a resource of the kustomization, and only those");
    assert!(kustomization.get("namespace").is_none());
    for (file, doc) in &docs {
        assert!(doc["metadata"].get("namespace").is_none(), "{file}: {} names a namespace", name(doc));
    }
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|(_, d)| d["kind"].as_str()).collect();
    for kind in ["ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"] {
        assert!(kinds.contains(kind), "no {kind}");
    }
}

#[test]
fn deployments_probe_the_health_endpoints_on_the_configured_port_securely() {
    let Setup { docs, config, secret_keys, .. } = setup();
    let version = {
        let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
        manifest["workspace"]["package"]["version"].as_str().unwrap().to_string()
    };
    let grace = config["shutdown"]["grace_secs"].as_integer().unwrap();
    let deployments = of_kind(&docs, "Deployment");
    assert!(deployments.len() >= 4, "router, ingress, mail and telegram roles");
    for d in &deployments {
        let n = name(d);
        let pod = &d["spec"]["template"]["spec"];
        let c = container(d);
        let (literal, secrets) = env_of(d);
        let image = c["image"].as_str().unwrap();
        assert!(image.ends_with(&format!(":{version}")), "{n}: image {image} is not pinned to {version}");
        // The port the daemon listens on in this role (the ConfigMap, or an override in env).
        let listen = literal
            .iter()
            .find(|(k, _)| k == "SWITCHBOARD__HTTP__LISTEN")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| config["http"]["listen"].as_str().unwrap().to_string());
        assert!(listen.starts_with("0.0.0.0:"), "{n}: the kubelet cannot probe {listen}");
        let ports: BTreeMap<&str, u64> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["containerPort"].as_u64().unwrap()))
            .collect();
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], path, "{n}: {probe}");
            let port = match &get["port"] {
                Value::String(named) => *ports.get(named.as_str()).unwrap_or_else(|| panic!("{n}: no port {named}")),
                other => other.as_u64().unwrap(),
            };
            assert_eq!(port, u64::from(port_of(&listen)), "{n}: {probe} probes a port the daemon does not listen on");
        }
        assert_eq!(c["args"], serde_json::json!(["run", "--config", "/etc/switchboard/switchboard.toml"]), "{n}");
        let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["mountPath"] == "/etc/switchboard");
        let volume = mount.and_then(|m| pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == m["name"]));
        assert_eq!(volume.map(|v| &v["configMap"]["name"]), Some(&Value::from("switchboard-config")), "{n}");
        assert!(
            pod["terminationGracePeriodSeconds"].as_i64().unwrap() > grace,
            "{n}: SIGKILL would come before shutdown.grace_secs ({grace})"
        );
        for (kind, what) in [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")] {
            assert!(!c["resources"][kind][what].is_null(), "{n}: resources.{kind}.{what}");
        }
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{n}");
        assert!(psc["runAsUser"].as_u64().unwrap() > 0, "{n}");
        assert_eq!(pod["automountServiceAccountToken"], false, "{n}: no API token in the pod");
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{n}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{n}");
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{n}");
        assert!(sc["capabilities"].get("add").is_none(), "{n}: adds capabilities");
        for (var, key) in &secrets {
            assert!(secret_keys.contains(key), "{n}: {var} reads key {key}, which the Secret lacks");
        }
    }
}

/// The roles: which components each switches on, and the replica rules that follow from them.
#[test]
fn each_role_runs_its_components_and_check_config_accepts_the_configuration_as_it_sees_it() {
    let Setup { docs, config_text, config, .. } = setup();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, &config_text).unwrap();
    check_config(&file, &[]).expect("the ConfigMap's TOML as is");
    assert_eq!(config["nats"]["replicas"].as_integer(), Some(3), "a three-node JetStream cluster");

    let mut named = BTreeSet::new();
    named_variables(&toml::Value::Table(config.clone()), &mut named);
    let mut provided = BTreeSet::new();
    let mut roles = BTreeMap::new();
    for d in of_kind(&docs, "Deployment") {
        let n = name(d);
        let (literal, secrets) = env_of(d);
        for (var, _) in &secrets {
            assert!(named.contains(var), "{n}: {var} is named by no *_env key of the configuration");
            provided.insert(var.clone());
        }
        let mut env = literal.clone();
        env.extend(secrets.iter().map(|(k, _)| (k.clone(), "placeholder".to_string())));
        check_config(&file, &env).unwrap_or_else(|e| panic!("{n}: check-config with the role's variables: {e}"));
        let on: BTreeSet<String> = literal
            .iter()
            .filter(|(k, v)| k.ends_with("__ENABLED") && v == "true")
            .map(|(k, _)| k.trim_start_matches("SWITCHBOARD__").trim_end_matches("__ENABLED").to_lowercase())
            .collect();
        roles.insert(n.to_string(), (on, d));
    }
    assert_eq!(provided, named, "every variable the configuration names reaches some pod from the Secret");

    let role = |n: &str| roles.get(n).unwrap_or_else(|| panic!("no Deployment {n}"));
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let (on, router) = role("switchboard-router");
    assert!(on.contains("router") && !on.iter().any(|c| c.starts_with("channels__")), "router role: {on:?}");
    assert!(router["spec"]["replicas"].as_u64().unwrap() >= 2, "one leader and a standby");
    for (n, (on, _)) in &roles {
        assert!(n == "switchboard-router" || !on.contains("router"), "{n} runs a router too");
    }
    assert_eq!(role("switchboard-ingress").0, set(&["channels__webhook", "channels__webchat"]));
    for poller in ["switchboard-telegram", "switchboard-mail"] {
        let d = role(poller).1;
        assert_eq!(d["spec"]["replicas"], 1, "{poller}: one poller");
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate", "{poller}: never two pollers during a rollout");
    }

    let pdbs = of_kind(&docs, "PodDisruptionBudget");
    let router_labels = &router["spec"]["template"]["metadata"]["labels"];
    let router_pdb = pdbs
        .iter()
        .find(|p| selects(&p["spec"]["selector"]["matchLabels"], router_labels))
        .expect("a PodDisruptionBudget for the router pods");
    assert_eq!(router_pdb["spec"]["minAvailable"], 1);

    let ingress = role("switchboard-ingress").1;
    let service = of_kind(&docs, "Service")
        .into_iter()
        .find(|s| selects(&s["spec"]["selector"], &ingress["spec"]["template"]["metadata"]["labels"]))
        .expect("a Service for the ingress pods");
    let ports = container(ingress)["ports"].as_array().unwrap();
    for p in service["spec"]["ports"].as_array().unwrap() {
        assert!(
            ports.iter().any(|cp| cp["name"] == p["targetPort"] || cp["containerPort"] == p["targetPort"]),
            "Service port {p} targets no container port"
        );
    }
    for (n, (_, d)) in &roles {
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        assert!(selects(&d["spec"]["selector"]["matchLabels"], labels), "{n}: its selector misses its pods");
        if *n != "switchboard-ingress" {
            assert!(!selects(&service["spec"]["selector"], labels), "the Service would send traffic to {n}");
        }
    }
}

/// Whether every label of `selector` is on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

/// The roles that need only NATS: started from the ConfigMap with their Deployments' variables,
/// their probes' paths answer 200 on the listener; the ingress role takes a webhook signed with
/// the previous secret of a rotation.
#[tokio::test]
async fn the_router_and_ingress_roles_pass_their_probes_against_a_real_nats() {
    let Setup { docs, config_text, .. } = setup();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, &config_text).unwrap();
    let nats = NatsServer::start();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let (new_key, old_key) =
        (b"new-shop-secret-0123456789abcdef".to_vec(), b"old-shop-secret-0123456789abcdef".to_vec());
    let secret_values: BTreeMap<&str, String> = [
        ("shop-webhook-secret", format!("whsec_{}", b64(&new_key))),
        ("shop-webhook-previous-secret", format!("whsec_{}", b64(&old_key))),
        ("webchat-secret", "webchat-session-secret-0123456789abcdef".to_string()),
        ("helpdesk-token", "helpdesk-token-0123456789".to_string()),
        ("metrics-token", "metrics-token-0123456789".to_string()),
    ]
    .into_iter()
    .collect();

    let mut running = Vec::new();
    for role in ["switchboard-router", "switchboard-ingress"] {
        let d = of_kind(&docs, "Deployment").into_iter().find(|d| name(d) == role).expect(role);
        let (mut env, secrets) = env_of(d);
        for (var, key) in secrets {
            env.push((
                var,
                secret_values.get(key.as_str()).unwrap_or_else(|| panic!("no test value for {key}")).clone(),
            ));
        }
        // Loopback instead of the pod network, one NATS server instead of the cluster of three.
        let port = free_port();
        env.push(("SWITCHBOARD__HTTP__LISTEN".into(), format!("127.0.0.1:{port}")));
        env.push(("SWITCHBOARD__NATS__URL".into(), nats.url()));
        env.push(("SWITCHBOARD__NATS__REPLICAS".into(), "1".into()));
        let c = container(d);
        let paths = [c["livenessProbe"]["httpGet"]["path"].clone(), c["readinessProbe"]["httpGet"]["path"].clone()];
        running.push((role, port, paths, Running::daemon(&file, &env)));
    }
    for (role, port, paths, daemon) in &mut running {
        for path in paths.iter() {
            let path = path.as_str().unwrap();
            wait_until(&format!("{role}: {path} answers 200"), Duration::from_secs(60), || {
                daemon.assert_running(role);
                http_status(*port, path) == Some(200)
            });
        }
    }

    let ingress_port = running.iter().find(|(r, ..)| *r == "switchboard-ingress").unwrap().1;
    let body = r#"{"message_id":"rotation-1","customer":{"id":"c-1"},"text":"signed with the old secret"}"#;
    let ts = chrono::Utc::now().timestamp();
    let post = |key: &[u8], id: &str| {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{ingress_port}/v1/webhooks/shop"))
            .header("content-type", "application/json")
            .header(signature::ID, id)
            .header(signature::TIMESTAMP, ts.to_string())
            .header(signature::SIGNATURE, signature::sign(key, id, ts, body.as_bytes()))
            .body(body)
            .send()
    };
    assert_eq!(post(&old_key, "msg_old").await.unwrap().status().as_u16(), 202, "the previous secret still verifies");
    assert_eq!(post(&new_key, "msg_new").await.unwrap().status().as_u16(), 202, "the new secret verifies");
    let other = post(b"some-other-secret-0123456789abcd", "msg_other").await.unwrap();
    assert_eq!(other.status().as_u16(), 401, "any other secret is refused");
}
