//! Bundles `routes/*.json` (OpenAPI 3.1, one file per route family) into one document served at
//! `/openapi.json`, and records build info for `/healthz`.

use serde_json::{Map, Value};
use std::{env, fs, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=routes");
    let mut doc: Value = read("routes/openapi.json");
    let mut files: Vec<_> = fs::read_dir("routes")
        .expect("routes/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("openapi.json"))
        .collect();
    files.sort();
    for f in files {
        let part: Value = read(f.to_str().unwrap());
        for section in ["paths", "components"] {
            merge(&mut doc, section, &part, f.to_str().unwrap());
        }
        if let Some(tags) = part.get("tags").and_then(Value::as_array) {
            let all = doc
                .as_object_mut()
                .unwrap()
                .entry("tags")
                .or_insert_with(|| Value::Array(vec![]));
            all.as_array_mut().unwrap().extend(tags.iter().cloned());
        }
    }
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("openapi.json");
    fs::write(out, serde_json::to_string(&doc).unwrap()).unwrap();

    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok();
    let sha = git
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    println!(
        "cargo:rustc-env=BUILD_GIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
    let rustc = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok();
    let rustc = rustc
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=BUILD_RUSTC={rustc}");
    println!(
        "cargo:rustc-env=BUILD_PROFILE={}",
        env::var("PROFILE").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=.git/HEAD");
}

fn read(path: &str) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Merges one section, refusing duplicates so two route files cannot silently shadow each other.
fn merge(doc: &mut Value, section: &str, part: &Value, file: &str) {
    let Some(src) = part.get(section).and_then(Value::as_object) else {
        return;
    };
    let dst = doc
        .as_object_mut()
        .unwrap()
        .entry(section)
        .or_insert_with(|| Value::Object(Map::new()));
    for (k, v) in src {
        let d = dst.as_object_mut().unwrap();
        if section == "components" {
            let sub = d
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .unwrap();
            for (name, schema) in v.as_object().into_iter().flatten() {
                if sub.insert(name.clone(), schema.clone()).is_some() {
                    panic!("{file}: components.{k}.{name} is defined twice");
                }
            }
        } else if d.insert(k.clone(), v.clone()).is_some() {
            panic!("{file}: {section}.{k} is defined twice");
        }
    }
}
