//! `kiln serve` driven by a real HTTP client (ureq) on 127.0.0.1 with an ephemeral port: every
//! endpoint, the row and columnar formats, images as base64, every error case (after each of
//! which the server still answers), predictions equal to `kiln predict`'s, SIGTERM with
//! requests in flight, and the page in headless Chromium.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use common::bin::{kiln, predict_jsonl, stderr, stdout, train_shipped, KILN, ROOT};

/// A running `kiln serve`, stopped (SIGTERM) when dropped; stderr lines arrive on `log`.
struct Server {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(KILN)
            .arg("serve")
            .args(args)
            .args(["--port", "0", "--threads", "2"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let Ok(line) = log.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kiln serve never said where it listens");
            };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let base = addr.trim_end_matches('/').to_string();
                return Server { child, base, log };
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then the exit status and every stderr line not yet read.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        terminate(&self.child);
        let status = self.child.wait().unwrap();
        let lines = self.log.try_iter().collect();
        (status, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (status, JSON body) of a request.
fn call(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => a.get(url).call(),
        ("DELETE", _) => a.delete(url).call(),
        (_, Some(b)) => a
            .post(url)
            .header("content-type", "application/json")
            .send(b),
        (_, None) => a.post(url).send_empty(),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

fn trained_mlp(dir: &Path) -> PathBuf {
    let run = dir.join("mlp");
    let out = train_shipped("configs/mnist_mlp.toml", &run, &["--set", "train.epochs=1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    run
}

/// A small image model, one epoch on the shipped PNG folders.
fn trained_image_model(dir: &Path) -> PathBuf {
    let run = dir.join("img");
    let out = train_shipped(
        "configs/mnist_cnn.toml",
        &run,
        &["--set", "train.epochs=1", "--set", "train.batch_size=256"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    run
}

/// A table with a category column and string classes, small enough for a URL.
fn trained_table(dir: &Path) -> PathBuf {
    let mut rng = kiln::Rng::new(7);
    // Column names "0" and "length": a form's elements[name] takes them as a position and
    // its size.
    let mut csv = String::from("0,length,color,kind\n");
    for r in 0..150 {
        let class = r % 3;
        let color = ["red", "green", "blue"][(r / 3) % 3];
        let a = class as f32 + rng.uniform();
        let b = 2.0 * rng.uniform() - class as f32;
        csv.push_str(&format!(
            "{a},{b},{color},{}\n",
            ["alpha", "beta", "gamma"][class]
        ));
    }
    std::fs::write(dir.join("table.csv"), csv).unwrap();
    std::fs::write(
        dir.join("table.toml"),
        r#"
name = "table"
[data]
train = "table.csv"
target = "kind"
normalize = "standard"
missing = "mean"
valid_split = 0.0
[[model.layers]]
type = "dense"
units = 16
activation = "relu"
[[model.layers]]
type = "dense"
units = 3
[train]
epochs = 20
batch_size = 16
"#,
    )
    .unwrap();
    let out = kiln(
        dir,
        &["train", "table.toml", "--quiet", "--run-dir", "table"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    dir.join("table")
}

/// `kiln predict --proba --format jsonl` of `input` (a path, relative to the repository).
fn predict(run: &Path, input: &str) -> Vec<Value> {
    let out = predict_jsonl(run, input, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first `n` rows of the MNIST test CSV as a header and rows of cells.
fn mnist_rows(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    use std::io::Read;
    let gz = std::fs::File::open(Path::new(ROOT).join("datasets/mnist/test.csv.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .take(n)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn assert_close(got: &Value, want: &[f64], what: &str) {
    let got: Vec<f64> = got
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {got}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6, "{what}: {g} vs {w}");
    }
}

#[test]
fn endpoints_formats_and_errors_with_predictions_equal_to_kiln_predict() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = trained_mlp(dir.path());
    let img = trained_image_model(dir.path());
    let table = trained_table(dir.path());
    let server = Server::start(
        dir.path(),
        &[
            mlp.to_str().unwrap(),
            &format!("digits={}", img.display()),
            table.to_str().unwrap(),
            "--max-body",
            "300000",
        ],
    );
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();

    // Status and metadata.
    let (s, v) = call("GET", &server.url("/v1/models/mlp"), None);
    assert_eq!(
        (s, v["model_version_status"][0]["state"].clone()),
        (200, json!("AVAILABLE"))
    );
    let (s, v) = call("GET", &server.url("/v1/models/mlp/versions/1"), None);
    assert_eq!(s, 200, "{v}");
    let (s, v) = call("GET", &server.url("/v1/models/mlp/metadata"), None);
    assert_eq!(s, 200);
    assert_eq!(v["kiln"]["classes"], json!(classes));
    assert_eq!(v["kiln"]["inputs"].as_array().unwrap().len(), 784);
    let sig = &v["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(sig["outputs"]["probabilities"]["dtype"], "DT_FLOAT");
    let (s, v) = call("GET", &server.url("/v1/models/digits/metadata"), None);
    assert_eq!(
        (s, v["kiln"]["image"].clone()),
        (200, json!({"channels": 1, "height": 28, "width": 28}))
    );

    // Row format, objects by column name and lists in feature order, against kiln predict.
    let (header, rows) = mnist_rows(20);
    let want = predict(&mlp, "datasets/mnist/test.csv.gz");
    let objects: Vec<Value> = rows
        .iter()
        .map(|r| {
            let m: serde_json::Map<String, Value> = header
                .iter()
                .zip(r)
                .filter(|(h, _)| *h != "label")
                .map(|(h, c)| (h.clone(), json!(c.parse::<f64>().unwrap())))
                .collect();
            Value::Object(m)
        })
        .collect();
    let lists: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!(r[1..]
                .iter()
                .map(|c| c.parse::<f64>().unwrap())
                .collect::<Vec<_>>())
        })
        .collect();
    let predict_url = server.url("/v1/models/mlp:predict");
    for instances in [&objects, &lists] {
        let (s, v) = call(
            "POST",
            &predict_url,
            Some(&json!({ "instances": instances }).to_string()),
        );
        assert_eq!(s, 200, "{v}");
        for (i, p) in v["predictions"].as_array().unwrap().iter().enumerate() {
            assert_eq!(p["class"], want[i]["prediction"], "row {i}");
            let probs: Vec<f64> = classes
                .iter()
                .map(|c| want[i][format!("p_{c}")].as_f64().unwrap())
                .collect();
            assert_close(&p["probabilities"], &probs, &format!("row {i}"));
        }
    }
    // Columnar: {"inputs": {column: [values]}} → {"outputs": {"class": [...], ...}}.
    let cols: serde_json::Map<String, Value> = header[1..]
        .iter()
        .enumerate()
        .map(|(j, h)| {
            (
                h.clone(),
                json!(rows[..3]
                    .iter()
                    .map(|r| r[j + 1].parse::<f64>().unwrap())
                    .collect::<Vec<_>>()),
            )
        })
        .collect();
    let (s, v) = call(
        "POST",
        &predict_url,
        Some(&json!({ "inputs": cols }).to_string()),
    );
    assert_eq!(s, 200, "{v}");
    let got_classes: Vec<Value> = (0..3).map(|i| want[i]["prediction"].clone()).collect();
    assert_eq!(v["outputs"]["class"], json!(got_classes));
    assert_eq!(v["outputs"]["probabilities"].as_array().unwrap().len(), 3);

    // Images as base64 PNG bytes, against kiln predict on the same files.
    let seven = Path::new(ROOT).join("datasets/mnist/images/test/7");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&seven)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let want_img = predict(&img, "datasets/mnist/images/test/7");
    let b64 =
        |p: &Path| base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).unwrap());
    let instances: Vec<Value> = files[..4].iter().map(|p| json!({"b64": b64(p)})).collect();
    let (s, v) = call(
        "POST",
        &server.url("/v1/models/digits:predict"),
        Some(&json!({ "instances": instances }).to_string()),
    );
    assert_eq!(s, 200, "{v}");
    for (i, p) in v["predictions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["class"], want_img[i]["prediction"], "image {i}");
        let probs: Vec<f64> = classes
            .iter()
            .map(|c| want_img[i][format!("p_{c}")].as_f64().unwrap())
            .collect();
        assert_close(&p["probabilities"], &probs, &format!("image {i}"));
    }

    // Every error, each followed by a good request that still works.
    let good = json!({ "instances": [lists[0]] }).to_string();
    let too_big = json!({ "instances": vec![lists[0].clone(); 120] }).to_string();
    let table_url = server.url("/v1/models/table:predict");
    let table_rows = |rows: Vec<Value>| json!({ "instances": rows }).to_string();
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("POST", predict_url.clone(), Some("{\"instances\": [".into()), 400, "malformed JSON"),
        ("POST", predict_url.clone(), Some("[1, 2]".into()), 400, "JSON object"),
        ("POST", predict_url.clone(), Some(json!({"instances": [{"px0": 1}]}).to_string()), 400, "instances[0]: no \"px1\""),
        ("POST", predict_url.clone(), Some(json!({"instances": [lists[0], [1, 2]]}).to_string()), 400, "instances[1]: 2 values, the model reads 784"),
        ("POST", predict_url.clone(), Some(json!({"instances": [objects[0].clone().as_object().unwrap().clone().into_iter().map(|(k, v)| if k == "px5" { (k, json!("dark")) } else { (k, v) }).collect::<serde_json::Map<_, _>>()]}).to_string()), 400, "instances[0].px5: expected a number, got the string \"dark\""),
        ("POST", predict_url.clone(), Some(json!({"instances": [lists[0].as_array().unwrap().iter().enumerate().map(|(i, v)| if i == 3 { Value::Null } else { v.clone() }).collect::<Vec<_>>()]}).to_string()), 400, "instances[0].px3: missing value"),
        ("POST", predict_url.clone(), Some(json!({"instances": []}).to_string()), 400, "no instances"),
        ("POST", predict_url.clone(), Some(json!({"instances": [lists[0]], "extra": 1}).to_string()), 400, "unknown key \"extra\""),
        ("POST", server.url("/v1/models/digits:predict"), Some(json!({"instances": [{"b64": "not base64!"}]}).to_string()), 400, "instances[0].b64: not base64"),
        ("POST", server.url("/v1/models/digits:predict"), Some(json!({"instances": [{"b64": "aGVsbG8="}]}).to_string()), 400, "instances[0].b64: cannot decode the image"),
        ("POST", server.url("/v1/models/mpl:predict"), Some(good.clone()), 404, "no model named \"mpl\"; did you mean \"mlp\"?"),
        ("GET", server.url("/v2/models"), None, 404, "no endpoint /v2/models"),
        ("POST", server.url("/v1/models/mlp:classify"), Some(good.clone()), 404, "unknown method :classify"),
        ("GET", predict_url.clone(), None, 405, "use POST"),
        ("DELETE", server.url("/v1/models/mlp"), None, 405, "use GET"),
        ("POST", predict_url.clone(), Some(too_big), 413, "over the limit of 300000 bytes"),
        ("POST", table_url.clone(), Some(table_rows(vec![json!([1, 2, "red"]); 10_001])), 413, "10001 instances in one request; at most 10000"),
        ("POST", table_url.clone(), Some(table_rows(vec![json!([1e39, 2, "red"])])), 400, "instances[0].0: 1e+39 is outside float32's finite range"),
        ("POST", table_url.clone(), Some(table_rows(vec![json!([1, 2, "red"]), json!([3e38, -3e38, "red"])])), 400, "instances[1]: the model's output is not finite"),
        ("POST", server.url("/v1/models/ml%ZZ:predict"), Some(good.clone()), 400, "broken %-escape"),
    ];
    for (method, url, body, status, message) in cases {
        let (s, v) = call(method, &url, body.as_deref());
        assert_eq!(s, status, "{method} {url}: {v}");
        let err = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {url}: {v}"));
        assert!(
            err.contains(message),
            "{method} {url}: {err:?} lacks {message:?}"
        );
        let (s, v) = call("POST", &predict_url, Some(&good));
        assert_eq!(
            (s, v["predictions"][0]["class"].clone()),
            (200, want[0]["prediction"].clone()),
            "after {message}"
        );
    }

    // A percent-encoded name is decoded.
    let (s, v) = call("GET", &server.url("/v1/models/t%61ble"), None);
    assert_eq!(s, 200, "{v}");
    // A body that ends before its declared length is a 400 (not 413), and a declared length
    // over the limit is refused before the body is sent, without `100 Continue`.
    // `half_close`: end the upload (a body cut short); hyper then drops a complete request,
    // so whole requests keep the connection open for writing.
    let exchange = |request: String, half_close: bool| {
        use std::io::{Read, Write};
        let addr = server.base.trim_start_matches("http://").to_string();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        if half_close {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    let raw = |request: String| exchange(request, true);
    let whole = |request: &str| exchange(request.into(), false);
    let short = raw(
        "POST /v1/models/mlp:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ins"
            .into(),
    );
    assert!(
        short.starts_with("HTTP/1.1 400") && short.contains("ended early"),
        "{short}"
    );
    let expect = raw("POST /v1/models/mlp:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n".into());
    assert!(expect.starts_with("HTTP/1.1 413"), "{expect}");
    // A client that uploads 10 MB before it reads the answer (most clients) gets the 413: the
    // server reads and drops the rest rather than closing under the upload, which a client
    // sees as a broken pipe (it did, before).
    let body = format!("{{\"instances\": [{}0]}}", "0,".repeat(5_000_000));
    let upload = whole(&format!(
        "POST /v1/models/mlp:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert!(upload.starts_with("HTTP/1.1 413"), "{upload}");
    // HEAD answers where GET does, with GET's headers and no body; a 405 says what is allowed.
    let head = whole("HEAD /v1/models/mlp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let get = whole("GET /v1/models/mlp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let length = |a: &str| {
        a.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(String::from)
        })
    };
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    assert_eq!(length(&head), length(&get), "{head}\n{get}");
    let wrong = whole("PUT /v1/models/mlp:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert!(
        wrong.starts_with("HTTP/1.1 405") && wrong.to_ascii_lowercase().contains("allow: post\r\n"),
        "{wrong}"
    );
    let (s, _) = call("POST", &predict_url, Some(&good));
    assert_eq!(s, 200);

    // The page lists the models.
    let (s, page) = call("GET", &server.url("/"), None);
    let page = page.as_str().unwrap().to_string();
    assert!(s == 200 && page.contains("\"name\":\"mlp\"") && page.contains("\"name\":\"digits\""));

    let (status, log) = server.stop();
    assert!(status.success(), "{status:?}");
    // One access-log line per request, in the Common Log Format shape, then nothing on stdout.
    let access: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("127.0.0.1 - - ["))
        .collect();
    assert!(access.len() >= 40, "{log:?}");
    assert!(
        access
            .iter()
            .any(|l| l.contains("\"POST /v1/models/mlp:predict HTTP/1.1\" 413 ")),
        "{log:?}"
    );
}

/// A request body that arrives in ten pieces, 60 ms apart.
struct SlowReader {
    data: Vec<u8>,
    at: usize,
}

impl SlowReader {
    fn new(data: Vec<u8>) -> SlowReader {
        SlowReader { data, at: 0 }
    }
}

impl std::io::Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.data.len() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(60));
        let piece = (self.data.len() / 10 + 1)
            .min(buf.len())
            .min(self.data.len() - self.at);
        buf[..piece].copy_from_slice(&self.data[self.at..self.at + piece]);
        self.at += piece;
        Ok(piece)
    }
}

#[test]
fn sigterm_finishes_the_requests_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = trained_mlp(dir.path());
    let server = Server::start(dir.path(), &[mlp.to_str().unwrap()]);
    let (_, rows) = mnist_rows(500);
    let body = json!({"instances": rows.iter().map(|r| r[1..].iter().map(|c| c.parse::<f64>().unwrap()).collect::<Vec<_>>()).collect::<Vec<_>>()}).to_string();
    let url = server.url("/v1/models/mlp:predict");
    // Eight clients, each uploading one request of 500 rows in ten pieces 60 ms apart; SIGTERM
    // comes while every upload is still going.
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let mut resp = agent()
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(ureq::SendBody::from_owned_reader(SlowReader::new(
                        body.into_bytes(),
                    )))
                    .unwrap();
                let status = resp.status().as_u16();
                let text = resp.body_mut().read_to_string().unwrap();
                (
                    status,
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, log) = server.stop();
    let mut answered = 0;
    for c in clients {
        let (s, v) = c.join().unwrap();
        assert_eq!(s, 200, "a request in flight was lost: {v}");
        assert_eq!(v["predictions"].as_array().unwrap().len(), 500);
        answered += 1;
    }
    assert_eq!(answered, 8);
    assert!(status.success(), "{status:?} {log:?}");
    assert!(log.iter().any(|l| l.starts_with("stopping")), "{log:?}");
}

#[test]
fn the_page_lets_a_person_try_a_model_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        if std::env::var("REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("REQUIRE_CHROMIUM=1 but no chromium on PATH");
        }
        eprintln!("SKIPPED: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = trained_table(dir.path());
    let server = Server::start(dir.path(), &[table.to_str().unwrap()]);
    let want = {
        std::fs::write(
            dir.path().join("one.csv"),
            "0,length,color\n2.5,-1.5,blue\n",
        )
        .unwrap();
        let out = kiln(dir.path(), &["predict", "table", "one.csv"]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().nth(1).unwrap().to_string()
    };
    // The form filled from the URL and submitted by the page's own script.
    let url = server.url("/?model=table&0=2.5&length=-1.5&color=blue&submit=1");
    let profile = dir.path().join("chromium-profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("id=\"model-table\""),
        "no form for the model: {dom}"
    );
    assert!(
        dom.contains("data-done=\"1\""),
        "the prediction never came back: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains(&format!("class: {want}")),
        "the page shows another class than kiln predict ({want}): {dom}"
    );
    let (status, log) = server.stop();
    assert!(status.success());
    assert!(
        log.iter()
            .any(|l| l.contains("\"POST /v1/models/table:predict HTTP/1.1\" 200 ")),
        "{log:?}"
    );
}
