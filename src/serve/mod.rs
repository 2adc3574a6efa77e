//! `kiln serve`: trained models behind TensorFlow Serving's REST API, on hyper (through axum)
//! and tokio. Requests are parsed on the async workers, then batched per model
//! (`batcher.rs`) and run on the CPU pool (or the GPU). One access-log line per request goes to
//! stderr; stdout stays empty. SIGTERM or Ctrl-C stops accepting, finishes the requests in
//! flight and returns.

mod batcher;
mod page;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use batcher::Batcher;
pub use batcher::Batching;
use request::Problem;

use crate::data::DataSchema;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::nn::Model;

/// A trained model to serve under `name`.
pub struct Served {
    pub name: String,
    /// Where it came from (the run directory or checkpoint), for the logs and metadata.
    pub run: String,
    pub model: Model,
    pub loss: Loss,
    pub schema: DataSchema,
}

pub struct Options {
    pub addr: SocketAddr,
    pub batching: Batching,
    /// The largest request body accepted (413 above).
    pub max_body: usize,
}

struct Entry {
    name: String,
    schema: DataSchema,
    batcher: Batcher,
    metadata: Value,
}

struct App {
    models: Vec<Entry>,
    page: String,
    max_body: usize,
}

/// What the page and the metadata endpoint say about a model's inputs and outputs.
fn describe(s: &Served) -> Value {
    let schema = &s.schema;
    let mut inputs: Vec<Value> = schema
        .features
        .iter()
        .map(|f| json!({"name": f, "type": "number"}))
        .collect();
    for c in &schema.columns {
        inputs.push(match &c.encoder {
            crate::data::csv::columns::Encoder::Category { values } => {
                json!({"name": c.name, "type": "category", "values": values[1..]})
            }
            crate::data::csv::columns::Encoder::Text { .. } => {
                json!({"name": c.name, "type": "text"})
            }
        });
    }
    let mut v = json!({
        "name": s.name,
        "run": s.run,
        "task": schema.task.name(),
        "target": schema.target,
        "inputs": inputs,
    });
    if !schema.classes.is_empty() {
        v["classes"] = json!(schema.classes);
    }
    if let Some(img) = &schema.image {
        v["image"] = json!({"channels": img.channels, "height": img.height, "width": img.width});
        v["inputs"] = json!([{"name": "image", "type": "image", "b64": true}]);
    }
    v
}

/// TensorFlow Serving's metadata answer, with kiln's own description beside it.
fn metadata(kiln: &Value, k: usize) -> Value {
    let tensor = |dtype: &str, dims: &[i64]| json!({"dtype": dtype, "tensor_shape": {"dim": dims.iter().map(|d| json!({"size": d.to_string()})).collect::<Vec<_>>()}});
    let mut inputs = serde_json::Map::new();
    for i in kiln["inputs"].as_array().into_iter().flatten() {
        let dtype = if i["type"] == "number" {
            "DT_FLOAT"
        } else {
            "DT_STRING"
        };
        inputs.insert(
            i["name"].as_str().unwrap_or("").into(),
            tensor(dtype, &[-1]),
        );
    }
    let outputs = if kiln.get("classes").is_some() {
        json!({"class": tensor("DT_STRING", &[-1]), "probabilities": tensor("DT_FLOAT", &[-1, k as i64])})
    } else {
        json!({"value": tensor("DT_FLOAT", &[-1, k as i64])})
    };
    json!({
        "model_spec": {"name": kiln["name"], "signature_name": "", "version": "1"},
        "metadata": {"signature_def": {"signature_def": {"serving_default": {
            "inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict"
        }}}},
        "kiln": kiln,
    })
}

/// Serve until SIGTERM or Ctrl-C; `ready` gets the bound address (port 0 picks one).
pub fn serve(models: Vec<Served>, opts: Options, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let descriptions: Vec<Value> = models.iter().map(describe).collect();
    let page = page::render(&descriptions);
    let entries = models
        .into_iter()
        .zip(descriptions)
        .map(|(s, kiln)| {
            let batcher = Batcher::spawn(&s.name, s.model, s.loss, s.schema.clone(), opts.batching);
            let metadata = metadata(&kiln, batcher.k);
            Entry {
                name: s.name,
                schema: s.schema,
                batcher,
                metadata,
            }
        })
        .collect();
    let app = Arc::new(App {
        models: entries,
        page,
        max_body: opts.max_body,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", opts.addr)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        ready(addr);
        let router = axum::Router::new().fallback(handle).with_state(app);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(|e| Error::Runtime(format!("server: {e}")))
    })
}

async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping: no new connections; finishing the requests in flight");
}

/// Every request: route, answer, log one line.
async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let start = Instant::now();
    let line = format!("{} {} {:?}", req.method(), req.uri(), req.version());
    let mut allow = None;
    let (status, content_type, body) = match route(&app, req).await {
        Ok((content_type, body)) => (StatusCode::OK, content_type, body),
        Err(p) => {
            allow = p.allow;
            (
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "application/json",
                json!({ "error": p.message }).to_string(),
            )
        }
    };
    eprintln!(
        "{} - - [{}] \"{line}\" {} {} {:.3}",
        peer.ip(),
        clf_time(SystemTime::now()),
        status.as_u16(),
        body.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type);
    if let Some(methods) = allow {
        response = response.header(header::ALLOW, methods);
    }
    response.body(Body::from(body)).expect("a valid response")
}

fn problem(status: u16, message: impl Into<String>) -> Problem {
    Problem {
        status,
        message: message.into(),
        allow: None,
    }
}

/// Refuse any method but `allowed` (GET also answers HEAD: hyper sends its headers only).
fn only(method: &Method, allowed: Method, path: &str) -> std::result::Result<(), Problem> {
    let head = allowed == Method::GET && *method == Method::HEAD;
    if *method == allowed || head {
        return Ok(());
    }
    let mut p = problem(405, format!("{method} {path}: use {allowed}"));
    p.allow = Some(if allowed == Method::GET {
        "GET, HEAD"
    } else {
        "POST"
    });
    Err(p)
}

async fn route(app: &App, req: Request) -> std::result::Result<(&'static str, String), Problem> {
    let (method, raw) = (req.method().clone(), req.uri().path().to_string());
    let path = percent_decode(&raw)
        .ok_or_else(|| problem(400, format!("the path {raw} has a broken %-escape")))?;
    if path == "/" {
        only(&method, Method::GET, &path)?;
        return Ok(("text/html; charset=utf-8", app.page.clone()));
    }
    let Some(rest) = path.strip_prefix("/v1/models/") else {
        return Err(problem(
            404,
            format!("no endpoint {path}: try GET /, GET /v1/models/NAME[/metadata], POST /v1/models/NAME:predict"),
        ));
    };
    let (target, verb) = match rest.rsplit_once(':') {
        Some((t, v)) => (t, Some(v)),
        None => (rest, None),
    };
    let (target, meta) = match target.strip_suffix("/metadata") {
        Some(t) => (t, true),
        None => (target, false),
    };
    // `NAME/versions/1` addresses the one version a kiln model has.
    let name = match target.split_once("/versions/") {
        Some((n, "1")) => n,
        Some((n, v)) => {
            return Err(problem(
                404,
                format!("model {n} has version 1 only, not {v}"),
            ))
        }
        None => target,
    };
    let entry = app.models.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = app.models.iter().map(|m| m.name.as_str()).collect();
        problem(
            404,
            format!(
                "no model named \"{name}\"{}; served: {}",
                crate::suggest::did_you_mean(name, &names),
                names.join(", ")
            ),
        )
    })?;
    match (verb, meta) {
        (Some("predict"), false) => {
            only(&method, Method::POST, &path)?;
            let over = || {
                problem(
                    413,
                    format!(
                        "the request body is over the limit of {} bytes (--max-body)",
                        app.max_body
                    ),
                )
            };
            // A client that waits for `100 Continue` before sending a body declared over the
            // limit gets the 413 instead. (One that sends at once is read past the limit
            // first: closing on it mid-upload would show it a broken pipe, not the 413.)
            let headers = req.headers();
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let waits = headers
                .get(header::EXPECT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
            if waits && declared.is_some_and(|n| n > app.max_body as u64) {
                return Err(over());
            }
            let ticket = entry.batcher.ticket();
            let body = read_body(req.into_body(), app.max_body)
                .await
                .map_err(|e| {
                    problem(
                        400,
                        format!("the request body ended early or is malformed: {e}"),
                    )
                })?
                .ok_or_else(over)?;
            let parsed = request::parse(&body, &entry.schema)?;
            let values = entry
                .batcher
                .predict(ticket, parsed.x, parsed.n)
                .await
                .map_err(|e| problem(500, format!("prediction failed: {e}")))?;
            // A NaN would go out as null and a class be picked from it: refuse instead.
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                let what = if parsed.columnar {
                    "inputs"
                } else {
                    "instances"
                };
                return Err(problem(
                    400,
                    format!(
                        "{what}[{}]: the model's output is not finite (NaN or infinite); its values are far outside what the model was trained on",
                        i / entry.batcher.k.max(1)
                    ),
                ));
            }
            let answer = request::answer(&values, entry.batcher.k, &entry.schema, parsed.columnar);
            Ok(("application/json", answer))
        }
        (Some(v), _) => Err(problem(
            404,
            format!("unknown method :{v}; kiln models answer :predict"),
        )),
        (None, true) => {
            only(&method, Method::GET, &path)?;
            Ok(("application/json", entry.metadata.to_string()))
        }
        (None, false) => {
            only(&method, Method::GET, &path)?;
            let status = json!({"model_version_status": [{
                "version": "1", "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}
            }]});
            Ok(("application/json", status.to_string()))
        }
    }
}

/// How much of a body over `--max-body` is still read (and dropped) before the 413, and for
/// how long at most.
const DRAIN_BYTES: usize = 16 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// A request body of at most `limit` bytes; `None` when it is longer. Past the limit the rest
/// is still read and dropped (up to `DRAIN_BYTES` more, for `DRAIN_TIME` at most) before the
/// 413 goes out: a client that uploads before it reads the answer (most do) then sees the 413,
/// not its upload cut off by a closed connection. Memory stays at `limit`.
async fn read_body(
    mut body: Body,
    limit: usize,
) -> std::result::Result<Option<Vec<u8>>, axum::Error> {
    use http_body_util::BodyExt;
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        if bytes.len() + data.len() > limit {
            drain(body).await;
            return Ok(None);
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Some(bytes))
}

/// Read and drop what is left of a body, within `DRAIN_BYTES` and `DRAIN_TIME`.
async fn drain(mut body: Body) {
    use http_body_util::BodyExt;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut left = DRAIN_BYTES;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
        let n = frame.data_ref().map_or(0, |d| d.len());
        match left.checked_sub(n) {
            Some(rest) => left = rest,
            None => return,
        }
    }
}

/// `%XX` escapes decoded (a path as a browser or curl encodes it); None when the result is
/// not UTF-8 or an escape is broken.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Common Log Format time, `[01/Dec/2026:19:45:00 +0000]`, from an RFC 3339 UTC stamp.
fn clf_time(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string(); // 2026-12-01T19:45:00Z
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = s[5..7].parse::<usize>().unwrap_or(1).clamp(1, 12);
    format!(
        "{}/{}/{}:{} +0000",
        &s[8..10],
        MONTHS[month - 1],
        &s[0..4],
        &s[11..19]
    )
}
